//! Shutting a `ThreadPool` down while it is in use: a map consumed on another thread, and
//! `shutdown` from inside the pool's own tasks. Every wait is bounded, so a regression fails
//! instead of hanging the test run; the bounds are liveness limits, not speed targets.

use std::sync::{Arc, mpsc};
use std::time::Duration;

use parexec::{Error, ThreadPool};

#[path = "support/liveness.rs"]
mod liveness;
use liveness::{LIVENESS, eventually};

/// Runs `work` on a detached thread and returns its value, or fails if it is not done within
/// [`LIVENESS`] (the thread is then left behind, blocked).
fn finishes<R: Send + 'static>(what: &str, work: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(work()).unwrap());
    rx.recv_timeout(LIVENESS)
        .unwrap_or_else(|_| panic!("{what} did not finish within {LIVENESS:?}"))
}

/// Submits a task that holds a worker until the returned sender sends (or is dropped), and
/// returns once a worker has started it.
fn hold_a_worker(pool: &ThreadPool) -> (mpsc::Sender<()>, parexec::Future<()>) {
    let (release, wait) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let held = pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = wait.recv();
    });
    started
        .recv_timeout(LIVENESS)
        .expect("a worker starts the holding task");
    (release, held)
}

/// How a map's consumer takes the results.
#[derive(Clone, Copy, Debug)]
enum Consumer {
    Ordered,
    Unordered,
    CollectVec,
}

/// What a map's consumer got: each input index with its result.
type ByIndex = Vec<(usize, Result<u64, Error>)>;

const ITEMS: u64 = 32;
const WINDOW: usize = 8;

/// Item `x` takes a millisecond, so after running the first chunk itself an ordered consumer
/// waits for the workers rather than run the next queued chunk too.
fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(1));
    x * x
}

/// Consumes a map of [`ITEMS`] items on one thread while another calls `shutdown_cancel` with
/// a window of chunks queued behind a busy worker. Returns what the consumer got, by input
/// index; `CollectVec` gives one outcome for the whole map, its error or its values.
fn consume_during_shutdown_cancel(consumer: Consumer) -> Result<ByIndex, Error> {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (release, busy) = hold_a_worker(&pool);
    let consuming = Arc::clone(&pool);
    let (results_tx, results) = mpsc::channel();
    std::thread::spawn(move || {
        let map = consuming
            .map(slow_square, 0..ITEMS)
            .chunksize(1)
            .buffersize(WINDOW);
        let got = match consumer {
            Consumer::Ordered => Ok(map.enumerate().collect()),
            Consumer::Unordered => Ok(map.unordered().collect()),
            Consumer::CollectVec => map
                .collect_vec()
                .map(|values| values.into_iter().map(Ok).enumerate().collect()),
        };
        results_tx.send(got).unwrap();
    });
    // The window is queued behind the busy worker (one task for the gate, one per chunk).
    eventually("the map filling its window", || {
        pool.stats().submitted > WINDOW as u64
    });
    let cancelling = Arc::clone(&pool);
    let shutdown = std::thread::spawn(move || cancelling.shutdown_cancel());
    eventually("shutdown_cancel draining the queue", || {
        pool.stats().cancelled > 0
    });
    release.send(()).unwrap();
    let got = results
        .recv_timeout(LIVENESS)
        .unwrap_or_else(|_| panic!("the {consumer:?} consumer hung after shutdown_cancel"));
    finishes("shutdown_cancel", move || shutdown.join().unwrap());
    busy.result().unwrap();
    got
}

/// Every item came back exactly once, as its value, or as cancelled (queued when the pool shut
/// down), or as shut down (not yet dispatched then); and the shutdown did cancel some.
fn assert_every_item_accounted_for(got: &ByIndex) {
    let mut seen = vec![false; ITEMS as usize];
    for (index, result) in got {
        assert!(!seen[*index], "item {index} came back twice");
        seen[*index] = true;
        match result {
            Ok(value) => assert_eq!(*value, (*index as u64).pow(2)),
            Err(Error::Cancelled | Error::Shutdown) => {}
            Err(other) => panic!("item {index}: unexpected {other:?}"),
        }
    }
    assert!(seen.iter().all(|&s| s), "every item came back");
    assert!(
        got.iter().any(|(_, r)| matches!(r, Err(Error::Cancelled))),
        "the queued chunks were cancelled"
    );
}

#[test]
fn an_unordered_map_returns_every_item_after_shutdown_cancel() {
    let got = consume_during_shutdown_cancel(Consumer::Unordered).unwrap();
    assert_every_item_accounted_for(&got);
}

#[test]
fn an_ordered_map_returns_every_item_after_shutdown_cancel() {
    let got = consume_during_shutdown_cancel(Consumer::Ordered).unwrap();
    assert_every_item_accounted_for(&got);
}

#[test]
fn collect_vec_returns_after_shutdown_cancel() {
    let outcome = consume_during_shutdown_cancel(Consumer::CollectVec);
    assert!(
        matches!(outcome, Err(Error::Cancelled)),
        "the first queued chunk was cancelled: {:?}",
        outcome.map(|v| v.len())
    );
}

/// Submits `n` tasks returning their index.
fn queue_numbered(pool: &ThreadPool, n: usize) -> Vec<parexec::Future<usize>> {
    (0..n).map(|i| pool.submit(move || i)).collect()
}

/// Every future resolves (within the liveness bound) to its index: queued work ran.
fn assert_all_ran(queued: Vec<parexec::Future<usize>>) {
    for (i, mut future) in queued.into_iter().enumerate() {
        assert_eq!(
            future.result_timeout(LIVENESS).unwrap(),
            i,
            "queued task {i}"
        );
    }
}

#[test]
fn shutdown_from_a_task_runs_the_queue() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (release, gate) = mpsc::channel::<()>();
    let inside = Arc::clone(&pool);
    let mut caller = pool.submit(move || {
        gate.recv().unwrap();
        inside.shutdown();
        matches!(inside.submit(|| ()).result(), Err(Error::Shutdown))
    });
    let queued = queue_numbered(&pool, 4);
    release.send(()).unwrap();
    assert!(
        caller.result_timeout(LIVENESS).unwrap(),
        "refuses tasks at once"
    );
    assert_all_ran(queued);
    finishes("shutdown outside after shutdown inside", move || {
        pool.shutdown()
    });
}

#[test]
fn dropping_the_last_handle_in_a_task_runs_the_queue() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let (release, gate) = mpsc::channel::<()>();
    let last = Arc::clone(&pool);
    let mut dropper = pool.submit(move || {
        gate.recv().unwrap();
        drop(last);
    });
    let queued = queue_numbered(&pool, 4);
    drop(pool);
    release.send(()).unwrap();
    dropper.result_timeout(LIVENESS).unwrap();
    assert_all_ran(queued);
}

#[test]
fn tasks_on_every_worker_shutting_down_at_once_run_the_queue() {
    const WORKERS: usize = 2;
    let pool = Arc::new(ThreadPool::new(WORKERS).unwrap());
    // The callers wait for each other and for the queue to be filled.
    let all_running = Arc::new(std::sync::Barrier::new(WORKERS + 1));
    let callers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (pool, all_running) = (Arc::clone(&pool), Arc::clone(&all_running));
            pool.clone().submit(move || {
                all_running.wait();
                pool.shutdown();
            })
        })
        .collect();
    let queued = queue_numbered(&pool, 8);
    all_running.wait();
    for mut caller in callers {
        caller.result_timeout(LIVENESS).unwrap();
    }
    assert_all_ran(queued);
}
