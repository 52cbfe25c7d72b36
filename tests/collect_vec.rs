//! `Map::collect_vec`, and `Map::collect` into `Result<Vec<_>, _>` which is routed to it: the
//! same answer as `Iterator::collect`, no leaked or double-dropped values on any failure, and
//! no write after they return.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parexec::planner::WorkloadProfile;
use parexec::{Error, Map, Planner, ThreadPool};

/// The two ways to gather a whole map into a vector, which must behave the same.
#[derive(Clone, Copy, Debug)]
enum Collector {
    CollectVec,
    Collect,
}

impl Collector {
    const BOTH: [Collector; 2] = [Collector::CollectVec, Collector::Collect];

    fn run<I: Iterator, R: 'static>(self, map: Map<'_, I, R>) -> Result<Vec<R>, Error> {
        match self {
            Collector::CollectVec => map.collect_vec(),
            Collector::Collect => map.collect::<Result<Vec<_>, _>>(),
        }
    }
}

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
fn matches_iterator_collect_for_any_chunk_size() {
    let pool = ThreadPool::new(2).unwrap();
    let expected: Vec<u64> = (0..10_007).map(|x| x * 3).collect();
    for how in Collector::BOTH {
        let got = how.run(pool.map(|x: u64| x * 3, 0..10_007)).unwrap();
        assert_eq!(got, expected, "{how:?}");
        for chunk in [1, 7, 4096, 20_000] {
            let got = how
                .run(pool.map(|x: u64| x * 3, 0..10_007).chunksize(chunk))
                .unwrap();
            assert_eq!(got, expected, "{how:?}, chunksize {chunk}");
        }
    }
}

#[test]
fn heap_values_arrive_intact_and_in_order() {
    let pool = ThreadPool::new(2).unwrap();
    let words: Vec<String> = (0..5_000).map(|i| format!("w{i}")).collect();
    let expected: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
    for how in Collector::BOTH {
        let got = how
            .run(pool.map(|w: String| w.to_uppercase(), words.clone()))
            .unwrap();
        assert_eq!(got, expected, "{how:?}");
    }
}

#[test]
fn inputs_of_unknown_length_are_collected_too() {
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        let evens = (0..1_000_u64).filter(|x| x % 2 == 0);
        let got = how.run(pool.map(|x: u64| x + 1, evens)).unwrap();
        let expected: Vec<u64> = (0..1_000).step_by(2).map(|x| x + 1).collect();
        assert_eq!(got, expected, "{how:?}");
    }
}

#[test]
fn a_partly_consumed_map_collects_the_rest() {
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        let mut map = pool.map(|x: u64| x, 0..100).chunksize(8);
        assert_eq!(map.next().unwrap().unwrap(), 0);
        assert_eq!(
            how.run(map).unwrap(),
            (1..100).collect::<Vec<_>>(),
            "{how:?}"
        );
    }
}

#[test]
fn empty_and_zero_sized_results() {
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        assert!(
            how.run(pool.map(|x: u64| x, Vec::new()))
                .unwrap()
                .is_empty()
        );
        let units = how.run(pool.map(|_: u64| (), 0..1_000)).unwrap();
        assert_eq!(units.len(), 1_000, "{how:?}");
    }
}

#[test]
fn the_first_panic_in_input_order_is_the_error_and_nothing_leaks() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        let alive = Arc::new(AtomicUsize::new(0));
        let tracked = Arc::clone(&alive);
        let map = pool
            .map(
                move |x: u64| {
                    if x == 700 || x == 300 {
                        deliberate::panic_with(format_args!("item {x} fails"));
                    }
                    Tracked::new(x, &tracked)
                },
                0..2_000,
            )
            .chunksize(50);
        match how.run(map) {
            Err(Error::Panicked { message, .. }) => {
                assert!(message.contains("item 300"), "{how:?}: {message}")
            }
            other => panic!(
                "{how:?}: expected the panic of item 300, got {:?}",
                other.map(|v| v.len())
            ),
        }
        assert_eq!(alive.load(Ordering::SeqCst), 0, "{how:?}: values dropped");
    }
}

#[test]
fn a_panic_stops_the_rest_of_its_chunk() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let map = pool
            .map(
                move |x: u64| {
                    counted.fetch_add(1, Ordering::SeqCst);
                    if x == 0 {
                        deliberate::panic_with("the first item fails");
                    }
                    x
                },
                0..1_000,
            )
            .chunksize(1_000);
        assert!(matches!(how.run(map), Err(Error::Panicked { .. })));
        // Item by item, the one chunk would run to its end; in place, the collection has
        // failed at its first item, so nothing after it runs.
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{how:?}");
    }
}

#[test]
fn chunks_still_running_at_an_error_finish_before_it_returns() {
    deliberate::silence();
    for how in Collector::BOTH {
        let pool = ThreadPool::new(2).unwrap();
        let alive = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let (tracked, in_item) = (Arc::clone(&alive), Arc::clone(&running));
        let map = pool
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
            .chunksize(4);
        assert!(matches!(how.run(map), Err(Error::Panicked { .. })));
        assert_eq!(running.load(Ordering::SeqCst), 0, "{how:?}: no item after");
        assert_eq!(alive.load(Ordering::SeqCst), 0, "{how:?}");
        // Whatever had not started by then was cancelled: nothing more is ever computed.
        pool.shutdown();
        assert_eq!(alive.load(Ordering::SeqCst), 0, "{how:?}");
        assert_eq!(running.load(Ordering::SeqCst), 0, "{how:?}");
    }
}

#[test]
fn a_panicking_input_unwinds_cleanly() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
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
            how.run(
                pool.map(move |x: u64| Tracked::new(x, &tracked), input)
                    .chunksize(64),
            )
        }));
        assert!(unwound.is_err(), "{how:?}");
        assert_eq!(alive.load(Ordering::SeqCst), 0, "{how:?}");
    }
}

#[test]
fn an_input_longer_than_its_exact_size_hint_is_collected_whole() {
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        for chunk in [1, 16, 1_000] {
            let lying = LyingLength {
                inner: 0..100,
                claimed: 60,
            };
            let got = how.run(pool.map(|x: u64| x * 2, lying).chunksize(chunk));
            let expected: Vec<u64> = (0..100).map(|x| x * 2).collect();
            assert_eq!(got.unwrap(), expected, "{how:?}, chunksize {chunk}");
        }
    }
}

#[test]
fn an_input_shorter_than_its_exact_size_hint_gives_what_it_had() {
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        let lying = LyingLength {
            inner: 0..50,
            claimed: 80,
        };
        let got = how.run(pool.map(|x: u64| x * 2, lying)).unwrap();
        assert_eq!(got, (0..50).map(|x| x * 2).collect::<Vec<_>>(), "{how:?}");
    }
}

#[test]
fn an_input_too_long_for_a_vector_is_an_error_not_a_panic() {
    let pool = ThreadPool::new(1).unwrap();
    for how in Collector::BOTH {
        let outcome = how.run(pool.map(|x: usize| x, 0..usize::MAX));
        assert!(
            matches!(outcome, Err(Error::InvalidArgument(_))),
            "{how:?}: {outcome:?}"
        );
    }
}

#[test]
fn configuration_errors_are_returned() {
    let pool = ThreadPool::new(1).unwrap();
    for how in Collector::BOTH {
        let outcome = how.run(pool.map(|x: u64| x, 0..10).chunksize(0));
        assert!(matches!(outcome, Err(Error::InvalidArgument(_))), "{how:?}");
    }
}

#[test]
fn a_pool_shut_down_gives_shutdown() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    for how in Collector::BOTH {
        let outcome = how.run(pool.map(|x: u64| x, 0..10));
        assert!(matches!(outcome, Err(Error::Shutdown)), "{how:?}");
    }
}

#[test]
fn a_map_inside_a_task_on_the_same_pool_completes() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    for how in Collector::BOTH {
        let inner = Arc::clone(&pool);
        let total = pool
            .submit(move || {
                how.run(inner.map(|x: u64| x, 0..1_000).chunksize(10))
                    .map(|v| v.iter().sum::<u64>())
            })
            .result()
            .unwrap()
            .unwrap();
        assert_eq!(total, 499_500, "{how:?}");
    }
}

#[test]
fn a_serial_plan_collects_inline() {
    let profile = WorkloadProfile::uniform(1_000, Duration::from_nanos(5));
    let plan = Planner::new().profile(profile).plan().unwrap();
    assert!(!plan.parallel, "{plan}");
    fn triple(x: u64) -> u64 {
        x * 3
    }
    for how in Collector::BOTH {
        let got = how.run(plan.map(triple, 0..1_000).unwrap()).unwrap();
        assert_eq!(got, (0..1_000).map(triple).collect::<Vec<_>>(), "{how:?}");
    }
}

#[test]
fn tracked_values_survive_a_successful_collection() {
    let pool = ThreadPool::new(2).unwrap();
    for how in Collector::BOTH {
        let alive = Arc::new(AtomicUsize::new(0));
        let tracked = Arc::clone(&alive);
        let got = how
            .run(pool.map(move |x: u64| Tracked::new(x, &tracked), 0..3_000))
            .unwrap();
        assert_eq!(alive.load(Ordering::SeqCst), 3_000, "{how:?}");
        assert!(got.iter().enumerate().all(|(i, t)| t.value == i as u64));
        drop(got);
        assert_eq!(alive.load(Ordering::SeqCst), 0, "{how:?}");
    }
}
