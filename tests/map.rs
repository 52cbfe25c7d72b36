//! `map`: order, laziness and bounded memory, chunking, failures, cancellation, unordered.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use parexec::{Error, ThreadPool};

/// An input that counts how many items have been pulled from it.
fn counted(n: Option<usize>, pulled: &Arc<AtomicUsize>) -> impl Iterator<Item = usize> + use<> {
    let pulled = Arc::clone(pulled);
    (0..n.unwrap_or(usize::MAX)).inspect(move |_| {
        pulled.fetch_add(1, Ordering::SeqCst);
    })
}

#[test]
fn results_come_back_in_input_order() {
    let pool = ThreadPool::new(2).unwrap();
    // Early items are the slowest, so completion order differs from input order.
    let out: Vec<u64> = pool
        .map(
            |x: u64| {
                std::thread::sleep(Duration::from_micros(50 * (20 - x.min(20))));
                x * 10
            },
            0..200,
        )
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, (0..200).map(|x| x * 10).collect::<Vec<_>>());
}

#[test]
fn map_is_lazy_and_bounded_on_an_infinite_input() {
    let pool = ThreadPool::new(2).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let mut results = pool
        .map(|x: usize| x + 1, counted(None, &pulled))
        .chunksize(10)
        .buffersize(3);
    let first: Vec<usize> = results.by_ref().take(25).map(Result::unwrap).collect();
    assert_eq!(first, (1..=25).collect::<Vec<_>>());
    // 25 consumed, at most a window of 3 chunks of 10 beyond the chunk being consumed.
    assert!(
        pulled.load(Ordering::SeqCst) <= 30 + 30,
        "pulled {}",
        pulled.load(Ordering::SeqCst)
    );
}

#[test]
fn nothing_is_pulled_before_iteration_starts() {
    let pool = ThreadPool::new(1).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let map = pool.map(|x: usize| x, counted(Some(100), &pulled));
    assert_eq!(pulled.load(Ordering::SeqCst), 0);
    drop(map);
}

#[test]
fn a_panic_fails_only_its_own_item() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let results: Vec<Result<u32, Error>> = pool
        .map(
            |x: u32| {
                if x % 7 == 3 {
                    deliberate::panic_with(format_args!("item {x} is bad"));
                }
                x
            },
            0..50,
        )
        .chunksize(8)
        .collect();
    assert_eq!(results.len(), 50);
    for (x, result) in results.iter().enumerate() {
        match result {
            Ok(v) => assert_eq!(*v as usize, x),
            Err(Error::Panicked { message, .. }) => {
                assert_eq!(x % 7, 3);
                assert_eq!(message, &format!("{} item {x} is bad", deliberate::PREFIX));
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 7);
}

#[test]
fn dropping_the_iterator_cancels_chunks_that_have_not_started() {
    let pool = ThreadPool::new(1).unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let ran_in_task = Arc::clone(&ran);
    let (second_started_tx, second_started) = mpsc::channel();
    let (open_second, second_gate) = mpsc::channel::<()>();
    let second_started_tx = std::sync::Mutex::new(second_started_tx);
    let second_gate = std::sync::Mutex::new(second_gate);
    let mut map = pool
        .map(
            move |x: usize| {
                // The second chunk holds the only worker until the iterator has been dropped.
                if x == 10 {
                    second_started_tx.lock().unwrap().send(()).unwrap();
                    second_gate.lock().unwrap().recv().unwrap();
                }
                ran_in_task.fetch_add(1, Ordering::SeqCst);
                x
            },
            0..1000,
        )
        .chunksize(10)
        .buffersize(8);
    assert_eq!(map.next().unwrap().unwrap(), 0);
    second_started.recv().unwrap();
    drop(map);
    open_second.send(()).unwrap();
    pool.shutdown();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        20,
        "only the two started chunks ran"
    );
    assert_eq!(pool.stats().cancelled, 6, "{:?}", pool.stats());
}

#[test]
fn unordered_yields_in_completion_order_with_input_indices() {
    let pool = ThreadPool::new(2).unwrap();
    let (open, wait) = mpsc::channel::<()>();
    let wait = std::sync::Mutex::new(wait);
    let mut out = pool
        .map(
            move |x: usize| {
                if x == 0 {
                    wait.lock().unwrap().recv().unwrap();
                }
                x * 2
            },
            0..20,
        )
        .chunksize(1)
        .unordered();
    // Item 0 is held back, yet everything else arrives first.
    let mut early: Vec<(usize, usize)> = (0..19)
        .map(|_| {
            let (i, r) = out.next().unwrap();
            (i, r.unwrap())
        })
        .collect();
    early.sort_unstable();
    assert_eq!(early, (1..20).map(|i| (i, i * 2)).collect::<Vec<_>>());
    open.send(()).unwrap();
    let (index, last) = out.next().unwrap();
    assert_eq!((index, last.unwrap()), (0, 0));
    assert!(out.next().is_none());
}

#[test]
fn explicit_chunksize_sets_the_number_of_dispatches() {
    let pool = ThreadPool::new(2).unwrap();
    let n = pool.map(|x: u32| x, 0..1000).chunksize(100).count();
    assert_eq!(n, 1000);
    pool.shutdown();
    assert_eq!(pool.stats().submitted, 10);
}

#[test]
fn automatic_chunks_group_trivial_items() {
    let pool = ThreadPool::new(2).unwrap();
    let total: u64 = pool
        .map(|x: u64| x, 0..200_000)
        .sum::<Result<u64, _>>()
        .unwrap();
    assert_eq!(total, 199_999 * 200_000 / 2);
    pool.shutdown();
    let chunks = pool.stats().submitted;
    assert!(
        chunks < 20_000,
        "trivial items are batched: {chunks} chunks for 200,000 items"
    );
    assert!(
        chunks >= 8,
        "still at least four chunks per worker: {chunks}"
    );
}

#[test]
fn automatic_chunks_stay_small_for_slow_items() {
    let pool = ThreadPool::new(2).unwrap();
    let n = pool
        .map(
            |x: u32| {
                std::thread::sleep(Duration::from_millis(2));
                x
            },
            0..40,
        )
        .count();
    assert_eq!(n, 40);
    pool.shutdown();
    assert_eq!(
        pool.stats().submitted,
        40,
        "items far above the overhead travel alone"
    );
}

#[test]
fn zero_chunksize_or_buffersize_is_an_error_not_a_hang() {
    let pool = ThreadPool::new(1).unwrap();
    let results: Vec<_> = pool.map(|x: u8| x, 0..10).chunksize(0).collect();
    assert_eq!(results.len(), 1);
    assert!(matches!(results[0], Err(Error::InvalidArgument(_))));
    let results: Vec<_> = pool.map(|x: u8| x, 0..10).buffersize(0).collect();
    assert!(matches!(results[..], [Err(Error::InvalidArgument(_))]));
}

#[test]
fn empty_input_yields_nothing() {
    let pool = ThreadPool::new(1).unwrap();
    assert_eq!(pool.map(|x: u8| x, Vec::new()).count(), 0);
    assert_eq!(pool.map(|x: u8| x, Vec::new()).unordered().count(), 0);
}

#[test]
fn a_map_after_shutdown_yields_shutdown_errors() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let results: Vec<_> = pool.map(|x: u8| x, 0..3).collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| matches!(r, Err(Error::Shutdown))));
}
