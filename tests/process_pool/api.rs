//! The pool's API: results, maps, settings, lifecycle and statistics.

use std::time::Duration;

use parexec::{Error, Executor, ProcessPool, ThreadPool, as_completed};

use crate::capture::capture;
use crate::tasks::*;
use crate::{census, pool};

pub fn submit_and_map_return_correct_results() {
    let pool = pool(2);
    assert_eq!(pool.submit(square, 12).result().unwrap(), 144);
    let out: Vec<u64> = pool
        .map(square, 0..10_000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, (0..10_000).map(|x| x * x).collect::<Vec<_>>());
    let futures: Vec<_> = (0..50).map(|x| pool.submit(square, x)).collect();
    let mut sum = 0;
    for done in as_completed(futures) {
        sum += done.result().unwrap();
    }
    assert_eq!(sum, (0..50).map(|x| x * x).sum::<u64>());
}

pub fn collect_vec_moves_results_in_and_returns_the_first_error() {
    let pool = pool(2);
    let out = pool.map(square, 0..10_000).collect_vec().unwrap();
    assert_eq!(out, (0..10_000).map(|x| x * x).collect::<Vec<_>>());
    let failed = pool.map(panics_on_13, 0..100).chunksize(7).collect_vec();
    match failed {
        Err(Error::Panicked { message, .. }) => assert!(message.contains("thirteen"), "{message}"),
        other => panic!("expected the panic of item 13, got {other:?}"),
    }
    // The pool keeps serving after the failed collection.
    assert_eq!(pool.submit(square, 3).result().unwrap(), 9);
}

pub fn sum_of_squares<E: Executor>(executor: &E, n: u64) -> Result<u64, Error> {
    executor.map(square, 0..n).sum()
}

pub fn one_generic_pipeline_runs_on_both_pools() {
    let threads = ThreadPool::new(2).unwrap();
    let processes = pool(2);
    assert_eq!(
        sum_of_squares(&threads, 1000).unwrap(),
        sum_of_squares(&processes, 1000).unwrap()
    );
    assert_eq!(processes.kind(), parexec::ExecutorKind::Processes);
}

pub fn a_100_mb_payload_travels_both_ways() {
    let pool = pool(2);
    let text: String = "parexec!".repeat(100 << 20 >> 3);
    let expected_sum: u64 = text.bytes().map(u64::from).sum();
    let small = pool.submit(square, 3);
    let (len, sum, back) = pool.submit(checksum, text.clone()).result().unwrap();
    assert_eq!((len, sum), (100 << 20, expected_sum));
    assert!(back == text);
    assert_eq!(small.result().unwrap(), 9);
}

/// The tasks print to the streams they inherit, which the test points at files: the bytes reach
/// them intact, and stay out of the test log.
pub fn printing_tasks_do_not_corrupt_the_protocol() {
    let (out, printed) = capture(|| {
        pool(2)
            .map(print_and_square, 0..200)
            .chunksize(7)
            .collect::<Result<Vec<u64>, _>>()
    });
    assert_eq!(out.unwrap(), (0..200).map(|x| x * x).collect::<Vec<_>>());
    // Counted rather than matched line by line: two workers' lines may interleave.
    assert_eq!(occurrences(&printed.stdout, FRAME_LIKE), 200);
    assert_eq!(occurrences(&printed.stderr, ON_STDERR), 200);
}

fn occurrences(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle.as_bytes())
        .count()
}

pub fn workers_are_recycled_after_max_tasks() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_tasks_per_worker(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..9)
        .map(|_| pool.submit(pid, ()).result().unwrap())
        .collect();
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[2], pids[3]);
    assert_ne!(pids[5], pids[6]);
    let mut distinct = pids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{pids:?}");
}

pub fn initializer_and_env_reach_every_worker() {
    let pool = ProcessPool::builder()
        .workers(2)
        .env("PAREXEC_TEST_MODE", "fast")
        .initializer(initializer)
        .build()
        .unwrap();
    let seen: Vec<_> = (0..8).map(|_| pool.submit(env_and_init, ())).collect();
    for future in seen {
        assert_eq!(future.result().unwrap(), (Some("fast".to_owned()), true));
    }
}

pub fn a_panicking_initializer_fails_the_build() {
    match ProcessPool::builder()
        .workers(2)
        .initializer(bad_initializer)
        .build()
    {
        Err(Error::Initializer(message)) => {
            assert!(message.contains("cannot initialize"), "{message}")
        }
        other => panic!("expected an initializer error, got {other:?}"),
    }
}

pub fn lazy_pools_start_workers_with_the_first_task() {
    let pool = ProcessPool::builder().workers(2).lazy().build().unwrap();
    assert!(pool.worker_pids().is_empty());
    assert_eq!(pool.submit(square, 4).result().unwrap(), 16);
    assert!(!pool.worker_pids().is_empty());
}

pub fn cancelled_tasks_never_run() {
    let pool = pool(1);
    let blocker = pool.submit(slow_square, 1);
    // Fill the worker's window so the next task stays queued in the parent.
    let fillers: Vec<_> = (0..20).map(|x| pool.submit(slow_square, x)).collect();
    let marker = temp_path("cancelled");
    let victim = pool.submit(touch, marker.clone());
    assert!(victim.cancel(), "still queued");
    assert!(matches!(victim.result(), Err(Error::Cancelled)));
    blocker.result().unwrap();
    for f in fillers {
        f.result().unwrap();
    }
    pool.shutdown();
    assert!(
        std::fs::metadata(&marker).is_err(),
        "the cancelled task never ran"
    );
    assert!(pool.stats().cancelled >= 1);
}

pub fn shutdown_finishes_queued_work_then_refuses() {
    let pool = pool(2);
    let queued: Vec<_> = (0..20).map(|x| pool.submit(slow_square, x)).collect();
    pool.shutdown();
    for (x, future) in (0..20).zip(queued) {
        assert_eq!(future.result().unwrap(), x * x);
    }
    assert!(matches!(
        pool.submit(square, 1).result(),
        Err(Error::Shutdown)
    ));
    pool.shutdown();
}

/// Needs `/proc`, to list this process's children.
pub fn shutdown_reaps_every_worker() {
    let pool = pool(2);
    let queued: Vec<_> = (0..4).map(|x| pool.submit(slow_square, x)).collect();
    pool.shutdown();
    let left = census::children().expect("run only where /proc is available");
    assert!(left.is_empty(), "shutdown returned before reaping {left:?}");
    for (x, future) in (0..4).zip(queued) {
        assert_eq!(future.result().unwrap(), x * x);
    }
}

pub fn a_map_chunk_with_failures_keeps_the_other_items() {
    let pool = pool(2);
    let out: Vec<_> = pool.map(panics_on_13, 0..40).chunksize(8).collect();
    for (x, result) in (0..40).zip(out) {
        match result {
            Ok(v) => assert_eq!(v, x),
            Err(Error::Panicked { .. }) => assert_eq!(x, 13),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let unordered: u64 = pool
        .map(square, 0..100)
        .unordered()
        .map(|(_, r)| r.unwrap())
        .sum();
    assert_eq!(unordered, (0..100).map(|x| x * x).sum());
}

pub fn stats_count_tasks_and_time() {
    let pool = pool(2);
    let futures: Vec<_> = (0..10).map(|x| pool.submit(slow_square, x)).collect();
    let failing = pool.submit(panics_on_13, 13);
    for f in futures {
        f.result().unwrap();
    }
    let _ = failing.result();
    let stats = pool.stats();
    assert_eq!(stats.submitted, 11);
    assert_eq!(stats.completed, 10);
    assert_eq!(stats.failed, 1);
    assert!(stats.busy >= Duration::from_millis(200), "{stats:?}");
    assert!(stats.transfer > Duration::ZERO);
}
