use super::state::promise as pair;
use super::wait::POLL_BUDGET;
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::task::Waker;

#[test]
fn pending_to_running_to_done() {
    let (promise, future) = pair::<u32>();
    assert!(!future.is_running() && !future.is_done());
    assert!(promise.start());
    assert!(future.is_running());
    assert!(!promise.start(), "a task starts once");
    promise.complete(Ok(7));
    assert!(future.is_done() && !future.is_running() && !future.is_cancelled());
    assert_eq!(future.result().unwrap(), 7);
}

#[test]
fn pending_future_can_be_resolved_without_running() {
    let (promise, future) = pair::<u32>();
    promise.complete(Err(Error::Shutdown));
    assert!(matches!(future.result(), Err(Error::Shutdown)));
}

#[test]
fn cancel_before_start_wins_and_blocks_start() {
    let (promise, future) = pair::<u32>();
    assert!(future.cancel());
    assert!(future.cancel(), "cancel is idempotent");
    assert!(future.is_cancelled() && future.is_done());
    assert!(!promise.start());
    promise.complete(Ok(1));
    assert!(matches!(future.result(), Err(Error::Cancelled)));
}

#[test]
fn cancel_fails_once_running_or_done() {
    let (promise, future) = pair::<u32>();
    assert!(promise.start());
    assert!(!future.cancel());
    promise.complete(Ok(3));
    assert!(!future.cancel());
    assert!(!future.is_cancelled());
    assert_eq!(future.result().unwrap(), 3);
}

#[test]
fn cancel_racing_completion_resolves_exactly_once() {
    for _ in 0..2_000 {
        let (promise, future) = pair::<u32>();
        let resolutions = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&resolutions);
        future.add_done_callback(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let runner = std::thread::spawn(move || {
            if promise.start() {
                promise.complete(Ok(5));
            }
        });
        let cancelled = future.cancel();
        runner.join().unwrap();
        assert_eq!(resolutions.load(Ordering::SeqCst), 1);
        match future.result() {
            Ok(5) => assert!(!cancelled),
            Err(Error::Cancelled) => assert!(cancelled),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn dropped_promise_resolves_the_future() {
    let (promise, future) = pair::<u32>();
    drop(promise);
    assert!(matches!(future.result(), Err(Error::Cancelled)));
    let (promise, future) = pair::<u32>();
    assert!(promise.start());
    drop(promise);
    assert!(matches!(future.result(), Err(Error::Shutdown)));
}

#[test]
fn timeout_leaves_the_future_valid_and_result_is_taken_once() {
    let (promise, mut future) = pair::<u32>();
    assert!(matches!(
        future.result_timeout(Duration::from_millis(1)),
        Err(Error::Timeout)
    ));
    promise.complete(Ok(9));
    assert_eq!(future.result_timeout(Duration::from_secs(1)).unwrap(), 9);
    assert!(matches!(
        future.result_timeout(Duration::from_secs(1)),
        Err(Error::ResultTaken)
    ));
}

#[test]
fn callbacks_run_once_in_order_and_at_once_when_done() {
    let (promise, future) = pair::<u32>();
    let (tx, rx) = mpsc::channel();
    for tag in 0..3 {
        let tx = tx.clone();
        future.add_done_callback(move |outcome| tx.send((tag, *outcome.unwrap())).unwrap());
    }
    assert!(rx.try_recv().is_err(), "nothing runs before completion");
    promise.complete(Ok(4));
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [(0, 4), (1, 4), (2, 4)]);
    future.add_done_callback(move |outcome| tx.send((3, *outcome.unwrap())).unwrap());
    assert_eq!(
        rx.try_recv().unwrap(),
        (3, 4),
        "runs at once when already done"
    );
}

#[test]
fn callback_after_result_taken_sees_result_taken() {
    let (promise, mut future) = pair::<u32>();
    promise.complete(Ok(1));
    future.result_timeout(Duration::from_secs(1)).unwrap();
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |o| tx.send(matches!(o, Err(Error::ResultTaken))).unwrap());
    assert!(rx.recv().unwrap());
}

#[test]
fn panicking_callback_does_not_disturb_the_resolver() {
    crate::deliberate::silence();
    let (promise, future) = pair::<u32>();
    future.add_done_callback(|_| crate::deliberate::panic_with("callback panic"));
    promise.complete(Ok(2));
    assert_eq!(future.result().unwrap(), 2);
}

#[test]
fn await_resolves_through_the_waker() {
    struct ThreadWaker(std::thread::Thread);
    impl std::task::Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let (promise, mut future) = pair::<u32>();
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut future).poll(&mut cx).is_pending());
    let resolver = std::thread::spawn(move || promise.complete(Ok(11)));
    let value = loop {
        match Pin::new(&mut future).poll(&mut cx) {
            Poll::Ready(v) => break v,
            Poll::Pending => std::thread::park(),
        }
    };
    resolver.join().unwrap();
    assert_eq!(value.unwrap(), 11);
}

#[test]
fn a_long_wait_halves_the_poll_budget_and_a_done_future_leaves_it() {
    let (promise, future) = pair::<u32>();
    let resolver = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        promise.complete(Ok(1));
    });
    let before = POLL_BUDGET.get();
    assert_eq!(future.result().unwrap(), 1);
    resolver.join().unwrap();
    assert_eq!(POLL_BUDGET.get(), before / 2);
    let after_long_wait = POLL_BUDGET.get();
    assert_eq!(Future::ready(Ok(2_u8)).result().unwrap(), 2);
    assert_eq!(POLL_BUDGET.get(), after_long_wait);
}

#[test]
fn ready_futures_and_failure_probe() {
    assert!(Future::ready(Err::<u8, _>(Error::Timeout)).is_failed());
    assert!(!Future::ready(Ok(1_u8)).is_failed());
}

#[test]
fn future_is_send_and_sync() {
    fn assert_send_sync<X: Send + Sync>() {}
    assert_send_sync::<Future<String>>();
}

/// Runs `work` on its own thread and returns its value, failing (instead of hanging the test
/// run) if it has not finished within a generous liveness bound.
fn finishes<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(work()).unwrap());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("deadlocked: did not finish within the liveness bound")
}

#[test]
fn a_callback_may_wait_for_a_thread_that_asks_its_future() {
    let (promise, future) = pair::<u32>();
    let future = Arc::new(future);
    let asked = Arc::clone(&future);
    let (tx, rx) = mpsc::channel();
    future.add_done_callback(move |outcome| {
        let value = *outcome.unwrap();
        let seen_done = std::thread::spawn(move || asked.is_done()).join().unwrap();
        tx.send((value, seen_done)).unwrap();
    });
    finishes(move || promise.complete(Ok(8)));
    assert_eq!(rx.try_recv().unwrap(), (8, true));
    let future = Arc::into_inner(future).expect("the callback released its handle");
    assert_eq!(future.result().unwrap(), 8);
}

#[test]
fn a_callback_may_call_its_own_future() {
    let (promise, future) = pair::<u32>();
    let own = Arc::new(parking_lot::Mutex::new(None::<Future<u32>>));
    let (tx, rx) = mpsc::channel();
    let inside = Arc::clone(&own);
    future.add_done_callback(move |outcome| {
        let mut guard = inside.lock();
        let own = guard.as_mut().expect("stored before completion");
        let nested = tx.clone();
        own.add_done_callback(move |o| nested.send(format!("nested {}", o.unwrap())).unwrap());
        let seen = format!(
            "first {} done={} running={} cancelled={} cancel={} {:?}",
            outcome.unwrap(),
            own.is_done(),
            own.is_running(),
            own.is_cancelled(),
            own.cancel(),
            own,
        );
        let seen = format!(
            "{seen} result={:?}",
            own.result_timeout(Duration::from_secs(60))
        );
        tx.send(seen).unwrap();
    });
    *own.lock() = Some(future);
    finishes(move || promise.complete(Ok(5)));
    assert_eq!(
        rx.try_iter().collect::<Vec<_>>(),
        [
            "first 5 done=true running=false cancelled=false cancel=false \
             Future { stage: \"done (ok)\", .. } result=Err(ResultTaken)",
            "nested 5",
        ]
    );
    let future = own.lock().take().unwrap();
    assert_eq!(future.result().unwrap(), 5, "published after the callbacks");
}

#[test]
fn a_callback_added_during_delivery_runs_once_after_the_earlier_ones() {
    let (promise, future) = pair::<u32>();
    let future = Arc::new(future);
    let (order_tx, order) = mpsc::channel();
    let (delivering_tx, delivering) = mpsc::channel();
    let (added_tx, added) = mpsc::channel::<()>();
    let first = order_tx.clone();
    future.add_done_callback(move |_| {
        delivering_tx.send(()).unwrap();
        added.recv().unwrap();
        first.send((1, std::thread::current().id())).unwrap();
    });
    let resolver = std::thread::spawn(move || {
        promise.complete(Ok(3));
        std::thread::current().id()
    });
    let adder = Arc::clone(&future);
    let done_during_delivery = finishes(move || {
        delivering.recv().unwrap();
        let done = adder.is_done();
        adder.add_done_callback(move |_| order_tx.send((2, std::thread::current().id())).unwrap());
        added_tx.send(()).unwrap();
        done
    });
    assert!(done_during_delivery, "done while its callbacks run");
    let resolver = resolver.join().unwrap();
    assert_eq!(
        order.try_iter().collect::<Vec<_>>(),
        [(1, resolver), (2, resolver)]
    );
    let future = Arc::into_inner(future).expect("the adder released its handle");
    assert_eq!(future.result().unwrap(), 3);
}
