//! Live resize: growing and shrinking during a running map keep every result, in order, and
//! the workers a shrink lets go are reaped, not left as zombies.
use parexec::Error;

use crate::tasks::short_nap;
use crate::{census, eventually, pool};

fn naps(n: u64) -> Vec<u64> {
    (0..n).map(|x| x + 1).collect()
}

pub fn growing_during_a_map_starts_workers_at_once() {
    let pool = pool(1);
    let mut map = pool.map(short_nap, 0..300).chunksize(4);
    let mut out: Vec<u64> = map.by_ref().take(30).map(Result::unwrap).collect();
    pool.set_workers(3).unwrap();
    assert_eq!((pool.workers(), pool.stats().workers), (3, 3));
    assert_eq!(pool.worker_pids().len(), 3);
    out.extend(map.map(Result::unwrap));
    assert_eq!(out, naps(300));
}

pub fn shrinking_during_a_map_keeps_every_result_and_reaps_the_surplus_workers() {
    let pool = pool(3);
    let before = pool.worker_pids();
    let mut map = pool.map(short_nap, 0..300).chunksize(4);
    let mut out: Vec<u64> = map.by_ref().take(30).map(Result::unwrap).collect();
    pool.set_workers(1).unwrap();
    assert_eq!(pool.workers(), 1);
    out.extend(map.map(Result::unwrap));
    assert_eq!(out, naps(300));
    assert!(
        eventually(|| pool.stats().workers == 1),
        "{:?}",
        pool.stats()
    );
    assert_eq!(pool.stats().failed, 0);
    let kept = pool.worker_pids();
    let gone: Vec<u32> = before.into_iter().filter(|p| !kept.contains(p)).collect();
    assert_eq!(gone.len(), 2);
    // Reaped while the pool still runs: neither running nor a zombie child any more.
    let reaped = || {
        let children = census::children().expect("run only where /proc is available");
        gone.iter().all(|pid| !children.contains(pid))
    };
    assert!(eventually(reaped), "workers left unreaped: {gone:?}");
}

pub fn a_shrink_and_a_regrow_before_the_workers_leave() {
    let pool = pool(2);
    let mut map = pool.map(short_nap, 0..200).chunksize(2);
    let mut out: Vec<u64> = map.by_ref().take(10).map(Result::unwrap).collect();
    pool.set_workers(1).unwrap();
    pool.set_workers(3).unwrap();
    out.extend(map.map(Result::unwrap));
    assert_eq!(out, naps(200));
    assert!(
        eventually(|| pool.stats().workers == 3),
        "{:?}",
        pool.stats()
    );
    pool.shutdown();
    assert_eq!(pool.stats().workers, 0);
}

pub fn zero_workers_is_an_invalid_argument_and_a_shut_down_pool_refuses() {
    let pool = pool(1);
    assert!(matches!(
        pool.set_workers(0),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(pool.workers(), 1);
    pool.shutdown();
    assert!(matches!(pool.set_workers(2), Err(Error::Shutdown)));
}
