//! Many threads submit tens of thousands of tasks at once; every future resolves exactly once
//! with the right value.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parexec::ThreadPool;

const SUBMITTERS: usize = 4;
const TASKS_EACH: usize = 25_000;

#[test]
fn concurrent_submitters_get_every_result_exactly_once() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let callbacks = Arc::new(AtomicUsize::new(0));
    let submitters: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let pool = Arc::clone(&pool);
            let callbacks = Arc::clone(&callbacks);
            std::thread::spawn(move || {
                let futures: Vec<_> = (0..TASKS_EACH)
                    .map(|i| {
                        let future = pool.submit(move || (t, i * 3));
                        let callbacks = Arc::clone(&callbacks);
                        future.add_done_callback(move |_| {
                            callbacks.fetch_add(1, Ordering::Relaxed);
                        });
                        future
                    })
                    .collect();
                for (i, future) in futures.into_iter().enumerate() {
                    assert_eq!(future.result().unwrap(), (t, i * 3));
                }
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    pool.shutdown();
    let total = SUBMITTERS * TASKS_EACH;
    assert_eq!(
        callbacks.load(Ordering::Relaxed),
        total,
        "each future resolved exactly once"
    );
    let stats = pool.stats();
    assert_eq!(stats.submitted as usize, total);
    assert_eq!(stats.completed as usize, total);
}

#[test]
fn concurrent_maps_and_cancellations_lose_nothing() {
    let pool = Arc::new(ThreadPool::new(2).unwrap());
    let workers: Vec<_> = (0..SUBMITTERS)
        .map(|t| {
            let pool = Arc::clone(&pool);
            std::thread::spawn(move || {
                let expected: u64 = (0..20_000_u64).map(|x| x ^ t as u64).sum();
                let total: u64 = pool
                    .map(move |x: u64| x ^ t as u64, 0..20_000)
                    .sum::<Result<u64, _>>()
                    .unwrap();
                assert_eq!(total, expected);
                // Abandon a map midway: the rest is cancelled, nothing hangs.
                let partial: Vec<_> = pool.map(|x: u64| x, 0..100_000).take(10).collect();
                assert_eq!(partial.len(), 10);
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
