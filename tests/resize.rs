//! Live resizing of a thread pool: growing takes effect at once, shrinking retires workers
//! between tasks, and no task or result is lost either way. (The process pool's resize tests
//! are in `process_pool.rs`, whose `main` can serve as a worker.)

#[path = "support/deliberate.rs"]
mod deliberate;

use std::time::{Duration, Instant};

use parexec::{Error, Executor, ThreadPool};

/// Waits, for a bounded time, until the pool runs exactly `workers` threads; returns the last
/// count seen. Not a timing assertion: it returns as soon as the count is reached.
fn live_workers_reach(pool: &ThreadPool, workers: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    while pool.stats().workers != workers && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    pool.stats().workers
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(200));
    x * x
}

fn squares(n: u64) -> Vec<u64> {
    (0..n).map(|x| x * x).collect()
}

#[test]
fn growing_during_a_map_starts_workers_at_once_and_keeps_every_result_in_order() {
    let pool = ThreadPool::new(1).unwrap();
    let mut map = pool.map(slow_square, 0..400).chunksize(4);
    let mut out: Vec<u64> = map.by_ref().take(50).map(Result::unwrap).collect();
    pool.set_workers(3).unwrap();
    assert_eq!((pool.workers(), pool.stats().workers), (3, 3));
    out.extend(map.map(Result::unwrap));
    assert_eq!(out, squares(400));
}

#[test]
fn shrinking_during_a_map_retires_workers_between_tasks_and_keeps_every_result_in_order() {
    let pool = ThreadPool::new(4).unwrap();
    let mut map = pool.map(slow_square, 0..400).chunksize(4);
    let mut out: Vec<u64> = map.by_ref().take(50).map(Result::unwrap).collect();
    pool.set_workers(1).unwrap();
    assert_eq!(pool.workers(), 1);
    out.extend(map.map(Result::unwrap));
    assert_eq!(out, squares(400));
    assert_eq!(live_workers_reach(&pool, 1), 1);
    // The pool still serves on its one worker.
    assert_eq!(pool.submit(|| 7).result().unwrap(), 7);
}

#[test]
fn shrinking_lets_running_tasks_finish() {
    let pool = ThreadPool::new(3).unwrap();
    let (release, gate) = crossbeam_channel::unbounded::<()>();
    let (started, wait_started) = crossbeam_channel::unbounded::<()>();
    let running: Vec<_> = (0..3)
        .map(|i| {
            let (gate, started) = (gate.clone(), started.clone());
            pool.submit(move || {
                started.send(()).unwrap();
                gate.recv().unwrap();
                i
            })
        })
        .collect();
    (0..3).for_each(|_| wait_started.recv().unwrap());
    let queued: Vec<_> = (10..20).map(|i| pool.submit(move || i)).collect();
    pool.set_workers(1).unwrap();
    // Every worker is busy: none can have left yet.
    assert_eq!(pool.stats().workers, 3);
    (0..3).for_each(|_| release.send(()).unwrap());
    let done: Vec<i32> = running
        .into_iter()
        .chain(queued)
        .map(|f| f.result().unwrap())
        .collect();
    assert_eq!(done, (0..3).chain(10..20).collect::<Vec<_>>());
    assert_eq!(live_workers_reach(&pool, 1), 1);
}

#[test]
fn growing_again_keeps_workers_that_were_due_to_leave() {
    let pool = ThreadPool::new(2).unwrap();
    let (release, gate) = crossbeam_channel::unbounded::<()>();
    let (started, wait_started) = crossbeam_channel::unbounded::<()>();
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (gate, started) = (gate.clone(), started.clone());
            pool.submit(move || {
                started.send(()).unwrap();
                gate.recv().unwrap();
            })
        })
        .collect();
    (0..2).for_each(|_| wait_started.recv().unwrap());
    pool.set_workers(1).unwrap();
    pool.set_workers(3).unwrap();
    // One worker was due to leave and stays; one thread is started.
    assert_eq!(pool.stats().workers, 3);
    (0..2).for_each(|_| release.send(()).unwrap());
    busy.into_iter().for_each(|f| f.result().unwrap());
    let out: Vec<u64> = pool
        .map(slow_square, 0..100)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, squares(100));
    assert_eq!(live_workers_reach(&pool, 3), 3);
}

#[test]
fn zero_workers_is_an_invalid_argument_and_a_shut_down_pool_refuses() {
    let pool = ThreadPool::new(2).unwrap();
    assert!(matches!(
        pool.set_workers(0),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(pool.workers(), 2);
    pool.shutdown();
    assert!(matches!(pool.set_workers(3), Err(Error::Shutdown)));
    assert_eq!(pool.stats().workers, 0);
}

#[test]
fn a_failing_initializer_on_a_new_worker_is_reported_and_the_others_serve() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static STARTS: AtomicUsize = AtomicUsize::new(0);
    deliberate::silence();
    let pool = ThreadPool::builder()
        .workers(1)
        .initializer(|_| {
            // The first worker starts; the next ones fail.
            if STARTS.fetch_add(1, Ordering::SeqCst) >= 1 {
                deliberate::panic_with("no more workers");
            }
        })
        .build()
        .unwrap();
    assert!(matches!(pool.set_workers(3), Err(Error::Initializer(_))));
    assert_eq!((pool.workers(), pool.stats().workers), (1, 1));
    assert_eq!(pool.submit(|| 5).result().unwrap(), 5);
}

#[test]
fn the_executor_trait_resizes_too() {
    fn resize<E: Executor>(pool: &E, workers: usize) -> Result<usize, Error> {
        pool.set_workers(workers)?;
        Ok(pool.workers())
    }
    let pool = ThreadPool::new(1).unwrap();
    assert_eq!(resize(&pool, 2).unwrap(), 2);
}
