use super::*;

fn sizer() -> ChunkSizer {
    ChunkSizer::adaptive(2, Duration::from_micros(2))
}

#[test]
fn starts_at_one_and_waits_for_a_measurement() {
    let mut s = sizer();
    assert_eq!(s.next_size(None), 1);
    assert_eq!(s.next_size(None), 1, "no growth without information");
}

#[test]
fn grows_at_most_twofold_towards_ten_times_overhead() {
    let mut s = sizer();
    s.observe(1, Duration::from_nanos(10));
    let sizes: Vec<_> = (0..14).map(|_| s.next_size(None)).collect();
    assert_eq!(sizes[..5], [2, 4, 8, 16, 32]);
    // 10 x 2 µs / 10 ns = 2000 items per chunk.
    assert_eq!(*sizes.last().unwrap(), 2000);
    assert!(sizes.windows(2).all(|w| w[1] <= 2 * w[0]));
}

#[test]
fn shrinks_at_once_when_items_get_slower() {
    let mut s = sizer();
    s.observe(1, Duration::from_nanos(10));
    for _ in 0..20 {
        s.next_size(None);
    }
    s.observe(1, Duration::from_millis(10));
    assert_eq!(s.next_size(None), 1);
}

#[test]
fn keeps_four_chunks_per_worker_and_shrinks_at_the_tail() {
    let mut s = sizer();
    s.observe(1, Duration::from_nanos(1));
    for _ in 0..30 {
        s.next_size(None);
    }
    assert_eq!(s.next_size(Some(800)), 100, "800 / (4 x 2)");
    assert_eq!(s.next_size(Some(16)), 2);
    assert_eq!(s.next_size(Some(1)), 1);
}

#[test]
fn caps_chunk_duration() {
    let mut s = ChunkSizer::adaptive(1, Duration::from_secs(1));
    s.observe(1, Duration::from_millis(1));
    for _ in 0..40 {
        s.next_size(None);
    }
    let cap = MAX_CHUNK_DURATION.as_millis() as usize;
    assert_eq!(s.next_size(None), cap, "MAX_CHUNK_DURATION / 1 ms");
}

#[test]
fn ewma_weights_new_measurements_by_a_fifth() {
    let mut s = sizer();
    s.observe(10, Duration::from_nanos(1000));
    s.observe(10, Duration::from_nanos(2000));
    assert_eq!(s.item_nanos, Some(120.0));
}

#[test]
fn expected_duration_follows_the_measured_item_cost() {
    let mut s = sizer();
    assert_eq!(s.expected(10), None);
    s.observe(4, Duration::from_micros(8));
    assert_eq!(s.expected(10), Some(Duration::from_micros(20)));
}

#[test]
fn fixed_size_wins() {
    let mut s = sizer();
    s.fixed(4096);
    assert_eq!(s.next_size(Some(10)), 4096);
}
