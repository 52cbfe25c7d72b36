use super::*;

fn batch(order: &[usize], start: usize, len: usize, wall_us: u64, cpu_us: u64) -> Batch {
    Batch {
        start,
        first: order[start],
        len,
        wall: Duration::from_micros(wall_us),
        cpu: Some(Duration::from_micros(cpu_us)),
    }
}

#[test]
fn stride_visits_every_item_once_spread_out() {
    for n in [1, 2, 3, 10, 97, 100, 1000] {
        let mut order = stride(n);
        assert_eq!(order.len(), n);
        if n >= 20 {
            // The first tenth of the visits reaches both halves of the input.
            let head = &order[..n / 10];
            assert!(head.iter().any(|&i| i < n / 2) && head.iter().any(|&i| i >= n / 2));
        }
        order.sort_unstable();
        assert!(order.iter().copied().eq(0..n), "n = {n}");
    }
}

#[test]
fn summary_of_injected_batches() {
    let order = stride(100);
    // Four single items of 1, 2, 3 and 6 ms, half of each spent on the CPU.
    let batches: Vec<Batch> = [1000, 2000, 3000, 6000]
        .iter()
        .enumerate()
        .map(|(k, &us)| batch(&order, k, 1, us, us / 2))
        .collect();
    let p = summarise(&order, &batches, None, 12.0);
    assert_eq!(p.items, 100);
    assert_eq!(p.mean_item, Duration::from_millis(3));
    assert!((p.cpu_share - 0.5).abs() < 1e-12);
    assert_eq!(p.largest_item, Duration::from_millis(6));
    assert_eq!(
        p.largest_position, 0.5,
        "unknown while most items were not visited"
    );
    // Sample standard deviation of 1, 2, 3, 6 around 3: sqrt(14 / 3).
    assert!((p.cv - (14.0_f64 / 3.0).sqrt() / 3.0).abs() < 1e-9);
    assert_eq!(p.payload_bytes, 12.0);
}

#[test]
fn preemption_of_cpu_bound_work_is_not_waiting() {
    let order = stride(100);
    // Five CPU-bound items of 100 µs; the thread lost the CPU for 400 µs during one.
    let mut batches: Vec<Batch> = (0..5).map(|k| batch(&order, k, 1, 100, 100)).collect();
    batches[2].wall = Duration::from_micros(500);
    let p = summarise(&order, &batches, None, 0.0);
    assert_eq!(p.mean_item, Duration::from_micros(100));
    assert!((p.cpu_share - 1.0).abs() < 1e-12 && p.cv < 1e-9, "{p:?}");
    // Work that waits keeps its wall times.
    let mut waiting: Vec<Batch> = (0..5).map(|k| batch(&order, k, 1, 100, 10)).collect();
    waiting[2].wall = Duration::from_micros(500);
    let p = summarise(&order, &waiting, None, 0.0);
    assert_eq!(p.mean_item, Duration::from_micros(180));
}

#[test]
fn batches_scale_the_spread_by_their_length() {
    let order = stride(1000);
    // Batch means 0.9 and 1.1 µs over 100 items each: sigma^2 = 100 * 2 * 0.01 = 2.
    let batches = [
        batch(&order, 0, 100, 90, 90),
        batch(&order, 100, 100, 110, 110),
    ];
    let p = summarise(&order, &batches, None, 0.0);
    assert_eq!(p.mean_item, Duration::from_micros(1));
    assert!((p.cv - 2.0_f64.sqrt()).abs() < 1e-9, "{}", p.cv);
    assert_eq!(p.cpu_share, 1.0);
}

#[test]
fn weights_reveal_an_outlier_the_sample_missed() {
    let order = stride(4);
    let mut weights = vec![1.0; 4];
    let heavy = order[3];
    weights[heavy] = 9.0; // 3x the rest combined
    let batches = [
        batch(&order, 0, 1, 1000, 1000),
        batch(&order, 1, 1, 1000, 1000),
    ];
    let p = summarise(&order, &batches, Some(&weights), 0.0);
    assert_eq!(p.mean_item, Duration::from_micros(3000));
    assert_eq!(p.largest_item, Duration::from_millis(9));
    assert_eq!(p.largest_position, heavy as f64 / 3.0);
    assert!(p.cv > 1.0);
}

#[test]
fn the_pilot_runs_a_spread_sample_and_survives_panics() {
    crate::deliberate::silence();
    let items: Vec<u32> = (0..50).collect();
    let p = run(
        &items,
        |x: u32| {
            if x == 7 {
                crate::deliberate::panic_with("bad item")
            } else {
                x * 2
            }
        },
        None,
        Some(&serde_size),
    )
    .unwrap();
    assert_eq!(p.items, 50);
    assert!(p.mean_item > Duration::ZERO);
    assert!(
        p.payload_bytes >= 2.0,
        "a u32 and its result take at least a byte each"
    );
}

#[test]
fn bad_input_is_an_error() {
    let none: [u32; 0] = [];
    assert!(matches!(
        run(&none, |x: u32| x, None, None),
        Err(Error::InvalidArgument(_))
    ));
    let items = [1_u32, 2];
    for weights in [&[1.0][..], &[1.0, f64::NAN], &[1.0, -1.0], &[0.0, 0.0]] {
        assert!(matches!(
            run(&items, |x: u32| x, Some(weights), None),
            Err(Error::InvalidArgument(_))
        ));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn the_run_queue_delay_is_read_on_linux_and_never_goes_back() {
    let queue = clocks::RunQueue::open();
    let first = queue.delay().expect("Linux reports scheduler statistics");
    std::thread::yield_now();
    let second = queue.delay().expect("a second reading");
    assert!(second >= first, "{second:?} after {first:?}");
}
