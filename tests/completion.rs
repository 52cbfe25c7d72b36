//! `as_completed`, `as_completed_timeout` and `wait` across pools.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::sync::{Arc, mpsc};
use std::time::Duration;

use parexec::{Error, ReturnWhen, ThreadPool, as_completed, as_completed_timeout, wait};

/// A task that finishes only when the returned sender is used (or dropped).
fn held(pool: &ThreadPool, value: u32) -> (mpsc::Sender<()>, parexec::Future<u32>) {
    let (open, gate) = mpsc::channel::<()>();
    let future = pool.submit(move || {
        let _ = gate.recv();
        value
    });
    (open, future)
}

fn wait_done<T>(future: &parexec::Future<T>) {
    while !future.is_done() {
        std::thread::yield_now();
    }
}

#[test]
fn done_futures_come_first_then_completion_order_across_pools() {
    let pool_a = ThreadPool::new(2).unwrap();
    let pool_b = ThreadPool::new(1).unwrap();
    let (open_1, first) = held(&pool_a, 1);
    let (open_2, second) = held(&pool_b, 2);
    let already = pool_a.submit(|| 3);
    wait_done(&already);
    let mut order = as_completed([first, second, already]);
    assert_eq!(order.next().unwrap().result().unwrap(), 3);
    open_2.send(()).unwrap();
    assert_eq!(order.next().unwrap().result().unwrap(), 2);
    open_1.send(()).unwrap();
    assert_eq!(order.next().unwrap().result().unwrap(), 1);
    assert!(order.next().is_none());
}

#[test]
fn as_completed_keeps_no_reference_to_yielded_futures() {
    let pool = ThreadPool::new(2).unwrap();
    let value = Arc::new(());
    let weak = Arc::downgrade(&value);
    let (open, gate) = mpsc::channel::<()>();
    let other = pool.submit(move || {
        let _ = gate.recv();
        Arc::new(())
    });
    let carrier = pool.submit(move || value);
    wait_done(&carrier);
    let mut order = as_completed([other, carrier]);
    let yielded = order.next().unwrap();
    drop(yielded);
    assert!(
        weak.upgrade().is_none(),
        "the iterator released the yielded future"
    );
    open.send(()).unwrap();
    assert!(order.next().is_some());
}

#[test]
fn as_completed_timeout_yields_a_timeout_then_returns_the_rest() {
    let pool = ThreadPool::new(2).unwrap();
    let quick = pool.submit(|| 7);
    wait_done(&quick);
    let (open, stuck) = held(&pool, 8);
    let mut order = as_completed_timeout([quick, stuck], Duration::from_millis(20));
    assert_eq!(order.next().unwrap().unwrap().result().unwrap(), 7);
    assert!(matches!(order.next(), Some(Err(Error::Timeout))));
    assert!(order.next().is_none());
    let pending = order.into_pending();
    assert_eq!(pending.len(), 1);
    open.send(()).unwrap();
    assert_eq!(pending.into_iter().next().unwrap().result().unwrap(), 8);
}

#[test]
fn wait_first_completed_returns_as_soon_as_one_is_done() {
    let pool = ThreadPool::new(2).unwrap();
    let (open_a, a) = held(&pool, 1);
    let (_open_b, b) = held(&pool, 2);
    open_a.send(()).unwrap();
    let (done, pending) = wait([a, b], ReturnWhen::FirstCompleted, None);
    assert_eq!(done.len(), 1);
    assert_eq!(pending.len(), 1);
    assert_eq!(done.into_iter().next().unwrap().result().unwrap(), 1);
}

#[test]
fn wait_first_exception_returns_on_the_first_failure() {
    deliberate::silence();
    let pool = ThreadPool::new(3).unwrap();
    let (open, slow) = held(&pool, 1);
    let ok = pool.submit(|| 2);
    wait_done(&ok);
    let bad = pool.submit(|| -> u32 { deliberate::panic_with("first exception") });
    let (done, pending) = wait([slow, ok, bad], ReturnWhen::FirstException, None);
    let mut outcomes: Vec<String> = done
        .into_iter()
        .map(|future| match future.result() {
            Ok(value) => format!("ok {value}"),
            Err(Error::Panicked { message, .. }) => format!("panicked: {message}"),
            Err(other) => format!("unexpected {other:?}"),
        })
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        [
            "ok 2".to_owned(),
            format!("panicked: {} first exception", deliberate::PREFIX)
        ]
    );
    let [slow] = <[_; 1]>::try_from(pending).expect("only the held task is pending");
    assert!(
        !slow.is_done(),
        "wait returned before the held task could finish"
    );
    open.send(()).unwrap();
    assert_eq!(slow.result().unwrap(), 1);
}

#[test]
fn wait_first_exception_without_failures_waits_for_all() {
    let pool = ThreadPool::new(2).unwrap();
    let futures: Vec<_> = (0..5).map(|i| pool.submit(move || i)).collect();
    let (done, pending) = wait(
        futures,
        ReturnWhen::FirstException,
        Some(Duration::from_secs(60)),
    );
    assert_eq!((done.len(), pending.len()), (5, 0));
}

#[test]
fn wait_timeout_returns_instead_of_failing() {
    let pool = ThreadPool::new(2).unwrap();
    let (open, stuck) = held(&pool, 1);
    let finished = pool.submit(|| 2);
    wait_done(&finished);
    let (done, pending) = wait(
        [stuck, finished],
        ReturnWhen::AllCompleted,
        Some(Duration::from_millis(20)),
    );
    assert_eq!((done.len(), pending.len()), (1, 1));
    open.send(()).unwrap();
    assert_eq!(pending.into_iter().next().unwrap().result().unwrap(), 1);
}

#[test]
fn wait_on_nothing_returns_at_once() {
    let (done, pending) = wait(
        Vec::<parexec::Future<u8>>::new(),
        ReturnWhen::FirstCompleted,
        None,
    );
    assert!(done.is_empty() && pending.is_empty());
    assert!(
        as_completed(Vec::<parexec::Future<u8>>::new())
            .next()
            .is_none()
    );
}
