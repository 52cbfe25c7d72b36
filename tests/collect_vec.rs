//! `Map::collect_vec`: the same answer as `collect`, no leaked or double-dropped values on any
//! failure, and no write after it returns.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parexec::planner::WorkloadProfile;
use parexec::{Error, Planner, ThreadPool};

/// A value that counts how many of its kind are alive, to catch leaks and double drops.
struct Tracked {
    value: u64,
    alive: Arc<AtomicUsize>,
}

impl Tracked {
    fn new(value: u64, alive: &Arc<AtomicUsize>) -> Self {
        alive.fetch_add(1, Ordering::SeqCst);
        Tracked {
            value,
            alive: Arc::clone(alive),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Claims an exact length that differs from what it really yields.
struct LyingLength {
    inner: std::ops::Range<u64>,
    claimed: usize,
}

impl Iterator for LyingLength {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let item = self.inner.next()?;
        self.claimed = self.claimed.saturating_sub(1);
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.claimed, Some(self.claimed))
    }
}

#[test]
fn matches_collect_for_any_chunk_size() {
    let pool = ThreadPool::new(2).unwrap();
    let expected: Vec<u64> = (0..10_007).map(|x| x * 3).collect();
    assert_eq!(
        pool.map(|x: u64| x * 3, 0..10_007).collect_vec().unwrap(),
        expected
    );
    for chunk in [1, 7, 4096, 20_000] {
        let got = pool
            .map(|x: u64| x * 3, 0..10_007)
            .chunksize(chunk)
            .collect_vec()
            .unwrap();
        assert_eq!(got, expected, "chunksize {chunk}");
    }
}

#[test]
fn heap_values_arrive_intact_and_in_order() {
    let pool = ThreadPool::new(2).unwrap();
    let words: Vec<String> = (0..5_000).map(|i| format!("w{i}")).collect();
    let got = pool
        .map(|w: String| w.to_uppercase(), words.clone())
        .collect_vec()
        .unwrap();
    let expected: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
    assert_eq!(got, expected);
}

#[test]
fn inputs_of_unknown_length_are_collected_too() {
    let pool = ThreadPool::new(2).unwrap();
    let evens = (0..1_000_u64).filter(|x| x % 2 == 0);
    let got = pool.map(|x: u64| x + 1, evens).collect_vec().unwrap();
    assert_eq!(
        got,
        (0..1_000).step_by(2).map(|x| x + 1).collect::<Vec<_>>()
    );
}

#[test]
fn a_partly_consumed_map_collects_the_rest() {
    let pool = ThreadPool::new(2).unwrap();
    let mut map = pool.map(|x: u64| x, 0..100).chunksize(8);
    assert_eq!(map.next().unwrap().unwrap(), 0);
    assert_eq!(map.collect_vec().unwrap(), (1..100).collect::<Vec<_>>());
}

#[test]
fn empty_and_zero_sized_results() {
    let pool = ThreadPool::new(2).unwrap();
    assert!(
        pool.map(|x: u64| x, Vec::new())
            .collect_vec()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        pool.map(|_: u64| (), 0..1_000).collect_vec().unwrap().len(),
        1_000
    );
}

#[test]
fn the_first_panic_in_input_order_is_the_error_and_nothing_leaks() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let alive = Arc::new(AtomicUsize::new(0));
    let tracked = Arc::clone(&alive);
    let outcome = pool
        .map(
            move |x: u64| {
                if x == 700 || x == 300 {
                    deliberate::panic_with(format_args!("item {x} fails"));
                }
                Tracked::new(x, &tracked)
            },
            0..2_000,
        )
        .chunksize(50)
        .collect_vec();
    match outcome {
        Err(Error::Panicked { message, .. }) => assert!(message.contains("item 300"), "{message}"),
        other => panic!(
            "expected the panic of item 300, got {:?}",
            other.map(|v| v.len())
        ),
    }
    assert_eq!(
        alive.load(Ordering::SeqCst),
        0,
        "every computed value dropped"
    );
}

#[test]
fn chunks_still_running_at_an_error_finish_before_it_returns() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let alive = Arc::new(AtomicUsize::new(0));
    let running = Arc::new(AtomicUsize::new(0));
    let (tracked, in_item) = (Arc::clone(&alive), Arc::clone(&running));
    let outcome = pool
        .map(
            move |x: u64| {
                if x == 0 {
                    deliberate::panic_with("the first item fails at once");
                }
                in_item.fetch_add(1, Ordering::SeqCst);
                // Later chunks are still writing when the error is seen.
                std::thread::sleep(Duration::from_millis(2));
                let value = Tracked::new(x, &tracked);
                in_item.fetch_sub(1, Ordering::SeqCst);
                value
            },
            0..40,
        )
        .chunksize(4)
        .collect_vec();
    assert!(matches!(outcome, Err(Error::Panicked { .. })));
    assert_eq!(
        running.load(Ordering::SeqCst),
        0,
        "no item runs after return"
    );
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    // Whatever had not started by then was cancelled: nothing more is ever computed.
    pool.shutdown();
    assert_eq!(alive.load(Ordering::SeqCst), 0);
    assert_eq!(running.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panicking_input_unwinds_cleanly() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let alive = Arc::new(AtomicUsize::new(0));
    let tracked = Arc::clone(&alive);
    let input = (0..1_000_u64).inspect(|&x| {
        if x == 600 {
            deliberate::panic_with("the input fails at 600");
        }
    });
    // The adapter keeps the exact length of the range.
    assert_eq!(input.size_hint(), (1_000, Some(1_000)));
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        pool.map(move |x: u64| Tracked::new(x, &tracked), input)
            .chunksize(64)
            .collect_vec()
    }));
    assert!(unwound.is_err());
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}

#[test]
fn an_input_longer_than_its_exact_size_hint_is_an_error() {
    let pool = ThreadPool::new(2).unwrap();
    let lying = LyingLength {
        inner: 0..100,
        claimed: 60,
    };
    let outcome = pool.map(|x: u64| x, lying).chunksize(16).collect_vec();
    assert!(
        matches!(outcome, Err(Error::InvalidArgument(_))),
        "{outcome:?}"
    );
}

#[test]
fn an_input_shorter_than_its_exact_size_hint_gives_what_it_had() {
    let pool = ThreadPool::new(2).unwrap();
    let lying = LyingLength {
        inner: 0..50,
        claimed: 80,
    };
    let got = pool.map(|x: u64| x * 2, lying).collect_vec().unwrap();
    assert_eq!(got, (0..50).map(|x| x * 2).collect::<Vec<_>>());
}

#[test]
fn an_input_too_long_for_a_vector_is_an_error_not_a_panic() {
    let pool = ThreadPool::new(1).unwrap();
    let outcome = pool.map(|x: usize| x, 0..usize::MAX).collect_vec();
    assert!(
        matches!(outcome, Err(Error::InvalidArgument(_))),
        "{outcome:?}"
    );
}

#[test]
fn configuration_errors_are_returned() {
    let pool = ThreadPool::new(1).unwrap();
    let outcome = pool.map(|x: u64| x, 0..10).chunksize(0).collect_vec();
    assert!(matches!(outcome, Err(Error::InvalidArgument(_))));
}

#[test]
fn a_pool_shut_down_gives_shutdown() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let outcome = pool.map(|x: u64| x, 0..10).collect_vec();
    assert!(matches!(outcome, Err(Error::Shutdown)));
}

#[test]
fn a_map_inside_a_task_on_the_same_pool_completes() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner = Arc::clone(&pool);
    let total = pool
        .submit(move || {
            inner
                .map(|x: u64| x, 0..1_000)
                .chunksize(10)
                .collect_vec()
                .map(|v| v.iter().sum::<u64>())
        })
        .result()
        .unwrap()
        .unwrap();
    assert_eq!(total, 499_500);
}

#[test]
fn a_serial_plan_collects_inline() {
    let profile = WorkloadProfile::uniform(1_000, Duration::from_nanos(5));
    let plan = Planner::new().profile(profile).plan().unwrap();
    assert!(!plan.parallel, "{plan}");
    fn triple(x: u64) -> u64 {
        x * 3
    }
    let got = plan.map(triple, 0..1_000).unwrap().collect_vec().unwrap();
    assert_eq!(got, (0..1_000).map(triple).collect::<Vec<_>>());
}

#[test]
fn tracked_values_survive_a_successful_collection() {
    let pool = ThreadPool::new(2).unwrap();
    let alive = Arc::new(AtomicUsize::new(0));
    let tracked = Arc::clone(&alive);
    let got = pool
        .map(move |x: u64| Tracked::new(x, &tracked), 0..3_000)
        .collect_vec()
        .unwrap();
    assert_eq!(alive.load(Ordering::SeqCst), 3_000);
    assert!(got.iter().enumerate().all(|(i, t)| t.value == i as u64));
    drop(got);
    assert_eq!(alive.load(Ordering::SeqCst), 0);
}
