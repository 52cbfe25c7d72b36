//! A thread pool without an initializer returns from `build` without waiting for its threads
//! to start: work submitted, mapped, shut down or cancelled while they are still starting must
//! behave as on a pool whose workers are all running. Each case repeats, so that some runs
//! catch the threads before they reach their loop.

use std::time::Duration;

use parexec::{Error, ThreadPool};

#[path = "support/liveness.rs"]
mod liveness;
use liveness::eventually;

const ROUNDS: usize = 200;

/// Waits until no thread of this process has a name starting with `prefix`. A joined thread
/// can still be listed in `/proc/self/task` for a moment while the kernel finishes its exit,
/// so the check polls, with a liveness bound.
fn no_thread_left_named(prefix: &str) {
    eventually(&format!("every {prefix} thread leaving"), || {
        threads_named(prefix).is_empty()
    });
}

/// The names of this process's threads whose name starts with `prefix`.
fn threads_named(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .expect("procfs lists this process's threads")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect()
}

#[test]
fn tasks_submitted_before_the_workers_have_started_all_run() {
    for _ in 0..ROUNDS {
        let pool = ThreadPool::new(2).unwrap();
        let futures: Vec<_> = (0..10_u64).map(|i| pool.submit(move || i * 3)).collect();
        let results: Vec<u64> = futures.into_iter().map(|f| f.result().unwrap()).collect();
        assert_eq!(results, (0..10).map(|i| i * 3).collect::<Vec<_>>());
    }
}

#[test]
fn a_map_started_with_the_pool_yields_every_item_in_order() {
    for _ in 0..ROUNDS {
        let pool = ThreadPool::new(2).unwrap();
        let out = pool.map(|x: u64| x + 1, 0..60).chunksize(1).collect_vec();
        assert_eq!(out.unwrap(), (1..=60).collect::<Vec<u64>>());
    }
}

#[test]
fn stats_count_every_worker_as_soon_as_build_returns_and_none_after_shutdown() {
    let pool = ThreadPool::new(3).unwrap();
    assert_eq!(pool.stats().workers, 3);
    pool.shutdown();
    assert_eq!(pool.stats().workers, 0);
}

#[test]
fn shutdown_while_workers_start_runs_what_was_queued_and_joins_every_thread() {
    for _ in 0..ROUNDS {
        let pool = ThreadPool::builder()
            .workers(2)
            .thread_name("startjoin")
            .build()
            .unwrap();
        let futures: Vec<_> = (0..8_u64).map(|i| pool.submit(move || i)).collect();
        pool.shutdown();
        let results: Vec<u64> = futures.into_iter().map(|f| f.result().unwrap()).collect();
        assert_eq!(results, (0..8).collect::<Vec<_>>());
        assert_eq!(pool.stats().completed, 8);
        assert!(matches!(pool.submit(|| 0).result(), Err(Error::Shutdown)));
    }
    no_thread_left_named("startjoin");
}

#[test]
fn a_pool_dropped_before_its_workers_started_leaves_no_thread_behind() {
    for _ in 0..ROUNDS {
        drop(
            ThreadPool::builder()
                .workers(4)
                .thread_name("startdrop")
                .build()
                .unwrap(),
        );
    }
    no_thread_left_named("startdrop");
}

#[test]
fn shutdown_cancel_while_workers_start_resolves_every_future() {
    for _ in 0..ROUNDS {
        let pool = ThreadPool::new(2).unwrap();
        let futures: Vec<_> = (0..50_u64).map(|i| pool.submit(move || i)).collect();
        pool.shutdown_cancel();
        let mut ran = 0;
        for (i, future) in futures.into_iter().enumerate() {
            match future.result() {
                Ok(value) => {
                    assert_eq!(value, i as u64);
                    ran += 1;
                }
                Err(Error::Cancelled) => {}
                Err(other) => panic!("task {i}: {other}"),
            }
        }
        let stats = pool.stats();
        assert_eq!((stats.completed, stats.cancelled), (ran, 50 - ran));
    }
}

#[test]
fn a_pool_idle_longer_than_its_workers_spin_still_runs_new_work() {
    let pool = ThreadPool::new(2).unwrap();
    for round in 0..5_u64 {
        // Long enough for every worker to stop spinning and park.
        std::thread::sleep(Duration::from_millis(5));
        let futures: Vec<_> = (0..4)
            .map(|i| pool.submit(move || round * 10 + i))
            .collect();
        // A liveness bound, not a speed target: a lost wake-up fails here instead of hanging.
        let results: Vec<u64> = futures
            .into_iter()
            .map(|mut f| f.result_timeout(Duration::from_secs(60)).unwrap())
            .collect();
        assert_eq!(results, (0..4).map(|i| round * 10 + i).collect::<Vec<_>>());
    }
}
