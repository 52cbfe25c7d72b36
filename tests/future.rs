//! `Future<T>` as users see it, on a real thread pool.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use parexec::{Error, ThreadPool};

/// Every test takes its pool from here, so that deliberate panics are silenced before the first
/// pool installs the hook that records panic locations, which the tests check.
fn pool(workers: usize) -> ThreadPool {
    deliberate::silence();
    ThreadPool::new(workers).unwrap()
}

/// A gate that holds a task until the test opens it.
fn gate() -> (mpsc::Sender<()>, impl FnOnce() + Send + 'static) {
    let (open, wait) = mpsc::channel::<()>();
    (open, move || wait.recv().unwrap())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

#[test]
fn result_blocks_until_the_task_is_done() {
    let pool = pool(2);
    let (open, wait) = gate();
    let future = pool.submit(move || {
        wait();
        "value"
    });
    open.send(()).unwrap();
    assert_eq!(future.result().unwrap(), "value");
}

#[test]
fn result_timeout_times_out_and_the_future_stays_valid() {
    let pool = pool(1);
    let (open, wait) = gate();
    let mut future = pool.submit(move || {
        wait();
        5
    });
    assert!(matches!(
        future.result_timeout(Duration::from_millis(5)),
        Err(Error::Timeout)
    ));
    assert!(!future.is_done());
    open.send(()).unwrap();
    assert_eq!(future.result_timeout(Duration::from_secs(60)).unwrap(), 5);
    assert!(matches!(
        future.result_timeout(Duration::from_secs(1)),
        Err(Error::ResultTaken)
    ));
}

#[test]
fn cancel_succeeds_only_before_the_task_starts() {
    let pool = pool(1);
    let (started_tx, started) = mpsc::channel();
    let (open, wait) = gate();
    let running = pool.submit(move || {
        started_tx.send(()).unwrap();
        wait();
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let ran_in_task = Arc::clone(&ran);
    let queued = pool.submit(move || ran_in_task.fetch_add(1, Ordering::SeqCst));
    started.recv().unwrap();
    assert!(running.is_running());
    assert!(!running.cancel(), "a running task cannot be cancelled");
    assert!(queued.cancel());
    assert!(queued.is_cancelled() && queued.is_done() && !queued.is_running());
    open.send(()).unwrap();
    running.result().unwrap();
    assert!(matches!(queued.result(), Err(Error::Cancelled)));
    pool.shutdown();
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a cancelled task never runs");
    assert_eq!(pool.stats().cancelled, 1);
}

#[test]
fn cancel_after_completion_fails() {
    let pool = pool(1);
    let mut future = pool.submit(|| 1);
    while !future.is_done() {
        std::thread::yield_now();
    }
    assert!(!future.cancel());
    assert!(!future.is_cancelled());
    assert_eq!(future.result_timeout(Duration::from_secs(1)).unwrap(), 1);
}

#[test]
fn done_callbacks_run_exactly_once_and_at_once_when_done() {
    let pool = pool(1);
    let (open, wait) = gate();
    let future = pool.submit(move || {
        wait();
        10
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let (seen_tx, seen) = mpsc::channel();
    for order in 0..3 {
        let calls = Arc::clone(&calls);
        let seen_tx = seen_tx.clone();
        future.add_done_callback(move |outcome| {
            calls.fetch_add(1, Ordering::SeqCst);
            seen_tx.send((order, *outcome.unwrap())).unwrap();
        });
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    open.send(()).unwrap();
    let got: Vec<_> = (0..3).map(|_| seen.recv().unwrap()).collect();
    assert_eq!(got, [(0, 10), (1, 10), (2, 10)], "in the order added");
    // The result is published once the callbacks have run; a callback added after that
    // runs at once (one added while they run would join them instead).
    let mut future = future;
    assert_eq!(future.result_timeout(Duration::from_secs(60)).unwrap(), 10);
    let late_calls = Arc::clone(&calls);
    future.add_done_callback(move |outcome| {
        assert!(matches!(outcome, Err(parexec::Error::ResultTaken)));
        late_calls.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "runs at once when already done"
    );
    drop(pool);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "never twice");
}

#[test]
fn callbacks_see_errors() {
    let pool = pool(1);
    let (tx, rx) = mpsc::channel();
    let future = pool.submit(|| -> u8 { deliberate::panic_with("nope") });
    future.add_done_callback(move |outcome| {
        tx.send(matches!(outcome, Err(Error::Panicked { .. })))
            .unwrap()
    });
    assert!(rx.recv().unwrap());
}

#[test]
fn futures_can_be_awaited() {
    let pool = pool(2);
    let (open, wait) = gate();
    let slow = pool.submit(move || {
        wait();
        2
    });
    let fast = pool.submit(|| 40);
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        open.send(()).unwrap();
    });
    let total = block_on(async { fast.await.unwrap() + slow.await.unwrap() });
    opener.join().unwrap();
    assert_eq!(total, 42);
}

#[test]
fn a_future_can_be_waited_on_from_another_thread() {
    let pool = pool(1);
    let future = pool.submit(|| String::from("moved"));
    let waiter = std::thread::spawn(move || future.result().unwrap());
    assert_eq!(waiter.join().unwrap(), "moved");
}

#[test]
fn a_panicking_task_reports_message_and_location_and_the_worker_survives() {
    let pool = pool(1);
    let failed =
        pool.submit(|| -> u32 { deliberate::panic_with(format_args!("exploded on {}", 7)) });
    match failed.result() {
        Err(Error::Panicked { message, location }) => {
            assert_eq!(message, format!("{} exploded on 7", deliberate::PREFIX));
            assert!(location.unwrap().contains("tests/future.rs"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        pool.submit(|| 1 + 1).result().unwrap(),
        2,
        "the same worker keeps serving"
    );
}
