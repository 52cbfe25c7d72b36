//! loom models of the future state machine: the real `Shared`, `Promise` and `Future` code,
//! with loom's mutex, condition variable and atomics swapped in by `crate::sync`. Run by
//! `.ci/loom`.

use std::future::Future as _;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use ::loom::sync::atomic::{AtomicBool, AtomicUsize};
use ::loom::sync::{Mutex, mpsc};
use ::loom::thread;
use std::sync::atomic::Ordering::SeqCst;

use super::state::promise;
use super::*;

/// Records each run of a done-callback, tagged.
fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Callback) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&log);
    let make = move |tag| -> Callback {
        let writer = Arc::clone(&writer);
        Box::new(move |_: Result<&u32, &Error>| writer.lock().unwrap().push(tag))
    };
    (log, make)
}

type Callback = Box<dyn FnOnce(Result<&u32, &Error>) + Send>;

#[test]
fn cancel_races_start_and_the_future_resolves_once() {
    ::loom::model(|| {
        let (promise, future) = promise::<u32>();
        let (log, callback) = recorder();
        future.add_done_callback(callback(1));
        let ran = Arc::new(AtomicBool::new(false));
        let worker_ran = Arc::clone(&ran);
        let worker = thread::spawn(move || {
            if promise.start() {
                worker_ran.store(true, SeqCst);
                promise.complete(Ok(7));
            }
        });
        let cancelled = future.cancel();
        worker.join().unwrap();
        assert_eq!(*log.lock().unwrap(), [1], "the callback ran exactly once");
        assert_eq!(
            cancelled,
            !ran.load(SeqCst),
            "cancel won exactly when the task did not run"
        );
        match future.result() {
            Ok(7) => assert!(!cancelled),
            Err(Error::Cancelled) => assert!(cancelled),
            other => panic!("unexpected {other:?}"),
        }
    });
}

#[test]
fn a_callback_added_during_resolution_runs_once_after_the_earlier_one() {
    ::loom::model(|| {
        let (promise, future) = promise::<u32>();
        let future = Arc::new(future);
        let (log, callback) = recorder();
        future.add_done_callback(callback(1));
        let resolver = thread::spawn(move || promise.complete(Ok(3)));
        let adder = {
            let future = Arc::clone(&future);
            let late = callback(2);
            thread::spawn(move || future.add_done_callback(late))
        };
        resolver.join().unwrap();
        adder.join().unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            [1, 2],
            "once each, in the order added"
        );
        let future = Arc::into_inner(future).expect("the adder is gone");
        assert_eq!(future.result().unwrap(), 3);
    });
}

#[test]
fn a_waiter_gets_the_outcome_after_the_callbacks_ran() {
    ::loom::model(|| {
        let (promise, future) = promise::<u32>();
        let callbacks_ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&callbacks_ran);
        future.add_done_callback(move |outcome| {
            assert_eq!(outcome.ok(), Some(&5));
            counter.fetch_add(1, SeqCst);
        });
        let resolver = thread::spawn(move || promise.complete(Ok(5)));
        assert_eq!(future.result().unwrap(), 5);
        assert_eq!(
            callbacks_ran.load(SeqCst),
            1,
            "published only after the callbacks"
        );
        resolver.join().unwrap();
    });
}

#[test]
fn a_callback_may_use_its_own_future_while_another_thread_does() {
    ::loom::model(|| {
        let (promise, future) = promise::<u32>();
        let future = Arc::new(future);
        let (asked_tx, asked) = mpsc::channel();
        let own = Arc::clone(&future);
        future.add_done_callback(move |_| {
            // Outside the lock: this thread may use the future, and another may too.
            let elsewhere = Arc::clone(&own);
            let other = thread::spawn(move || elsewhere.is_done());
            asked_tx
                .send((own.is_done(), own.cancel(), other.join().unwrap()))
                .unwrap();
        });
        let resolver = thread::spawn(move || promise.complete(Ok(1)));
        resolver.join().unwrap();
        assert_eq!(asked.recv().unwrap(), (true, false, true));
    });
}

#[test]
fn an_abandoned_promise_resolves_its_future() {
    ::loom::model(|| {
        let (promise, future) = promise::<u32>();
        let worker = thread::spawn(move || {
            let started = promise.start();
            drop(promise);
            started
        });
        let cancelled = future.cancel();
        let started = worker.join().unwrap();
        assert!(
            started != cancelled,
            "either the task started or the cancel won"
        );
        let expected_shutdown = started;
        match future.result() {
            Err(Error::Shutdown) => assert!(expected_shutdown),
            Err(Error::Cancelled) => assert!(!expected_shutdown),
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// Counts wake-ups.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, SeqCst);
    }
}

#[test]
fn a_poll_racing_resolution_is_woken_or_ready() {
    ::loom::model(|| {
        let (promise, mut future) = promise::<u32>();
        let resolver = thread::spawn(move || promise.complete(Ok(9)));
        let wakes = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let first = Pin::new(&mut future).poll(&mut cx);
        resolver.join().unwrap();
        match first {
            Poll::Ready(value) => assert_eq!(value.unwrap(), 9),
            Poll::Pending => {
                assert_eq!(
                    wakes.0.load(SeqCst),
                    1,
                    "a pending poll is woken exactly once"
                );
                match Pin::new(&mut future).poll(&mut cx) {
                    Poll::Ready(value) => assert_eq!(value.unwrap(), 9),
                    Poll::Pending => panic!("woken, yet still pending"),
                }
            }
        }
    });
}

#[test]
fn block_on_awaits_a_future_resolved_elsewhere() {
    ::loom::model(|| {
        let (promise, future) = promise::<u32>();
        let (log, callback) = recorder();
        future.add_done_callback(callback(1));
        let resolver = thread::spawn(move || promise.complete(Ok(4)));
        assert_eq!(::loom::future::block_on(future).unwrap(), 4);
        resolver.join().unwrap();
        assert_eq!(*log.lock().unwrap(), [1]);
    });
}
