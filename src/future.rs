//! The future state machine shared by every executor.
//!
//! # Design
//!
//! A task's producer side ([`Promise`]) and consumer side ([`Future`]) share one
//! `Arc<Shared<T>>`: a mutex-protected [`Inner`] plus a condition variable. The stages are
//!
//! ```text
//!            start()              resolve(outcome)
//! Pending ─────────────▶ Running ───────────────────▶ Done { outcome }
//!    │                                                   ▲      │ take (result)
//!    ├── cancel() ──▶ Done { Err(Cancelled) } ───────────┘      ▼
//!    └── resolve(outcome) without running (shutdown, a payload that would not serialize)
//!                                                         Done { taken }
//! ```
//!
//! * `cancel` wins only from `Pending`; once a worker has called `start`, it fails.
//! * `resolve` on a `Done` future (cancelled while queued) drops the late outcome, so a future
//!   resolves exactly once even when cancel races completion.
//! * A `Promise` dropped without resolving resolves its future with `Cancelled` (never started)
//!   or `Shutdown` (started), so no consumer ever waits forever.
//! * Done-callbacks run exactly once, on the thread that resolves the future, or at once on the
//!   registering thread if it is already done. They run under the future's lock: a callback has
//!   no handle to its own future, so it cannot re-enter it.
//!
//! The shared state lives alone (a [`Promise`] and its `Future`) or embedded in the allocation
//! of the task that resolves it ([`EmbedsState`]): a thread pool's submitted task carries its
//! future's state, which saves an allocation per task. Either way the stages are the same.

use std::cell::Cell;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::Error;

/// The longest a waiter polls before it blocks: a blocked thread takes ~80 µs to wake on small
/// VMs, longer than many tasks.
const SPIN_BEFORE_BLOCKING: Duration = Duration::from_micros(100);

thread_local! {
    /// How long this thread polls a pending future before it blocks. It doubles after a wait
    /// that a full poll would have covered and halves after one that it would not, so a thread
    /// waiting on long tasks stops taking turns on the cores those tasks run on.
    static POLL_BUDGET: Cell<Duration> = const { Cell::new(SPIN_BEFORE_BLOCKING) };
}

type Callback<T> = Box<dyn FnOnce(Result<&T, &Error>) + Send>;

enum Stage {
    Pending,
    Running,
    Done,
}

struct Inner<T> {
    stage: Stage,
    cancelled: bool,
    /// `Some` from resolution until a `result*` call moves it out.
    outcome: Option<Result<T, Error>>,
    callbacks: Vec<Callback<T>>,
    waker: Option<Waker>,
}

/// The state a future shares with whatever resolves it.
pub(crate) struct Shared<T> {
    inner: Mutex<Inner<T>>,
    done: Condvar,
    /// Mirrors `stage == Done` so waiters can poll without taking the lock.
    finished: AtomicBool,
}

/// A task allocation that carries its future's state; see the module notes.
pub(crate) trait EmbedsState<T>: Send + Sync {
    fn state(&self) -> &Shared<T>;
}

/// Where a future's state lives.
enum StateRef<T> {
    Alone(Arc<Shared<T>>),
    Embedded(Arc<dyn EmbedsState<T>>),
}

/// Creates a connected promise/future pair in the `Pending` stage.
pub(crate) fn promise<T>() -> (Promise<T>, Future<T>) {
    let shared = Arc::new(Shared::new());
    (
        Promise {
            shared: Arc::clone(&shared),
            resolved: false,
        },
        Future {
            state: StateRef::Alone(shared),
        },
    )
}

/// The producer side of a [`Future`], held by whoever runs the task.
pub(crate) struct Promise<T> {
    shared: Arc<Shared<T>>,
    resolved: bool,
}

impl<T> Promise<T> {
    /// See [`Shared::start`].
    pub(crate) fn start(&self) -> bool {
        self.shared.start()
    }

    /// Resolves the future. A future that was cancelled meanwhile keeps its `Cancelled`.
    pub(crate) fn complete(mut self, outcome: Result<T, Error>) {
        self.resolved = true;
        self.shared.resolve(outcome);
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if !self.resolved {
            self.shared.abandon();
        }
    }
}

impl<T> fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise").finish_non_exhaustive()
    }
}

impl<T> Shared<T> {
    /// A state in the `Pending` stage.
    pub(crate) fn new() -> Self {
        Shared {
            inner: Mutex::new(Inner {
                stage: Stage::Pending,
                cancelled: false,
                outcome: None,
                callbacks: Vec::new(),
                waker: None,
            }),
            done: Condvar::new(),
            finished: AtomicBool::new(false),
        }
    }

    /// Moves `Pending` to `Running`. Returns `false` when the future was cancelled (or already
    /// resolved), in which case the task must not run.
    pub(crate) fn start(&self) -> bool {
        let mut inner = self.inner.lock();
        match inner.stage {
            Stage::Pending => {
                inner.stage = Stage::Running;
                true
            }
            Stage::Running | Stage::Done => false,
        }
    }

    /// Resolves the future. A future that was cancelled meanwhile keeps its `Cancelled`.
    pub(crate) fn resolve(&self, outcome: Result<T, Error>) {
        let inner = self.inner.lock();
        self.finish(inner, outcome);
    }

    /// Resolves the future of a task that will never report an outcome: `Cancelled` if it
    /// never started, `Shutdown` if it did.
    pub(crate) fn abandon(&self) {
        let inner = self.inner.lock();
        let abandoned = if matches!(inner.stage, Stage::Running) {
            Error::Shutdown
        } else {
            Error::Cancelled
        };
        self.finish(inner, Err(abandoned));
    }

    /// Moves to `Done` (unless already there), runs the callbacks, wakes every waiter.
    fn finish(&self, mut inner: MutexGuard<'_, Inner<T>>, outcome: Result<T, Error>) {
        if matches!(inner.stage, Stage::Done) {
            return;
        }
        inner.stage = Stage::Done;
        self.finished.store(true, Ordering::Release);
        for callback in std::mem::take(&mut inner.callbacks) {
            run_callback(callback, outcome.as_ref());
        }
        inner.outcome = Some(outcome);
        let waker = inner.waker.take();
        drop(inner);
        self.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A panicking callback must not unwind into the worker that resolved the future.
fn run_callback<T>(callback: Callback<T>, outcome: Result<&T, &Error>) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callback(outcome)));
}

/// The handle to a task's eventual result: `Result<T, parexec::Error>`.
///
/// Every executor returns this same type, so code that waits on results does not care whether
/// a thread or a worker process ran the task. A future is `Send` (when `T` is), so it can be
/// waited on from any thread, and it implements [`std::future::Future`], so async code can
/// `.await` it.
///
/// Dropping a `Future` does not cancel its task; call [`cancel`](Future::cancel) for that.
///
/// # Panics in tasks
///
/// A task that panics resolves its future to [`Error::Panicked`] with the message and location;
/// nothing is re-raised in the caller.
///
/// ```
/// use parexec::ThreadPool;
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(2)?;
/// let mut answer = pool.submit(|| 6 * 7);
/// answer.add_done_callback(|outcome| assert_eq!(outcome.ok(), Some(&42)));
/// assert_eq!(answer.result_timeout(Duration::from_secs(10))?, 42);
/// # Ok::<(), parexec::Error>(())
/// ```
pub struct Future<T> {
    state: StateRef<T>,
}

impl<T> Future<T> {
    /// The future of a task whose allocation carries the state.
    pub(crate) fn embedded(task: Arc<dyn EmbedsState<T>>) -> Self {
        Future {
            state: StateRef::Embedded(task),
        }
    }

    fn shared(&self) -> &Shared<T> {
        match &self.state {
            StateRef::Alone(shared) => shared,
            StateRef::Embedded(task) => task.state(),
        }
    }

    /// A future that is already resolved, for results known without running anything.
    pub(crate) fn ready(outcome: Result<T, Error>) -> Self {
        let (promise, future) = promise();
        promise.complete(outcome);
        future
    }

    /// Blocks until the task finishes and returns its result.
    ///
    /// # Errors
    ///
    /// [`Error::Panicked`] if the task panicked, [`Error::Cancelled`] if it was cancelled,
    /// [`Error::Shutdown`] if its executor shut down first, [`Error::ResultTaken`] if an earlier
    /// [`result_timeout`](Future::result_timeout) already returned the result, and any
    /// executor-specific failure (for example [`Error::WorkerDied`]).
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// assert_eq!(pool.submit(|| "done").result()?, "done");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn result(self) -> Result<T, Error> {
        self.wait_until(None);
        self.take()
    }

    /// Like [`result`](Future::result), but gives up after `timeout`.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] if the task is not done in time; the future stays valid and a later
    /// call can still return the result. Otherwise the same errors as
    /// [`result`](Future::result).
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let mut slow = pool.submit(move || gate.recv().is_ok());
    /// assert!(matches!(slow.result_timeout(Duration::from_millis(10)), Err(parexec::Error::Timeout)));
    /// release.send(()).unwrap();
    /// assert!(slow.result_timeout(Duration::from_secs(10))?);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn result_timeout(&mut self, timeout: Duration) -> Result<T, Error> {
        if self.wait_until(Some(Instant::now() + timeout)) {
            self.take()
        } else {
            Err(Error::Timeout)
        }
    }

    /// Cancels the task if it has not started. Returns `true` if the future is (now) cancelled;
    /// `false` if the task is running or already finished.
    ///
    /// A cancelled future resolves to [`Error::Cancelled`] and its task never runs.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let blocker = pool.submit(move || gate.recv().ok());
    /// let queued = pool.submit(|| 1);
    /// assert!(queued.cancel());
    /// release.send(()).unwrap();
    /// assert!(matches!(queued.result(), Err(parexec::Error::Cancelled)));
    /// assert!(blocker.result().is_ok());
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn cancel(&self) -> bool {
        let mut inner = self.shared().inner.lock();
        match inner.stage {
            Stage::Pending => {
                inner.cancelled = true;
                self.shared().finish(inner, Err(Error::Cancelled));
                true
            }
            Stage::Running => false,
            Stage::Done => inner.cancelled,
        }
    }

    /// Whether the task has finished (successfully, with an error, or by cancellation).
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let mut f = pool.submit(|| ());
    /// f.result_timeout(std::time::Duration::from_secs(10))?;
    /// assert!(f.is_done());
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn is_done(&self) -> bool {
        matches!(self.shared().inner.lock().stage, Stage::Done)
    }

    /// Whether a worker is running the task right now.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (started, wait_start) = std::sync::mpsc::channel();
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let f = pool.submit(move || { started.send(()).unwrap(); gate.recv().ok() });
    /// wait_start.recv().unwrap();
    /// assert!(f.is_running());
    /// release.send(()).unwrap();
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn is_running(&self) -> bool {
        matches!(self.shared().inner.lock().stage, Stage::Running)
    }

    /// Whether the task was cancelled before it started.
    ///
    /// ```
    /// let f = parexec::ThreadPool::new(1)?.submit(|| ());
    /// # let _ = f.result();
    /// # let f = parexec::ThreadPool::new(1)?.submit(|| ());
    /// if f.cancel() { assert!(f.is_cancelled()); }
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.shared().inner.lock().cancelled
    }

    /// Registers `callback` to run once the future is done, with a reference to the outcome.
    ///
    /// Callbacks run exactly once, in the order added, on the thread that finishes the task;
    /// if the future is already done, the callback runs at once on this thread. A callback
    /// that panics is ignored (its panic is caught); it cannot harm the worker. If the result
    /// was already taken by [`result_timeout`](Future::result_timeout), the callback sees
    /// `Err(&Error::ResultTaken)`.
    ///
    /// ```
    /// use std::sync::mpsc;
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (tx, rx) = mpsc::channel();
    /// let f = pool.submit(|| 2 + 2);
    /// f.add_done_callback(move |outcome| tx.send(*outcome.unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 4);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn add_done_callback<F>(&self, callback: F)
    where
        F: FnOnce(Result<&T, &Error>) + Send + 'static,
    {
        let mut inner = self.shared().inner.lock();
        match (&inner.stage, &inner.outcome) {
            (Stage::Done, Some(outcome)) => run_callback(Box::new(callback), outcome.as_ref()),
            (Stage::Done, None) => run_callback(Box::new(callback), Err(&Error::ResultTaken)),
            _ => inner.callbacks.push(Box::new(callback)),
        }
    }

    /// Whether the future is done with an error (used by `wait(.., FirstException, ..)`).
    pub(crate) fn is_failed(&self) -> bool {
        matches!(self.shared().inner.lock().outcome, Some(Err(_)))
    }

    /// Registers a wake-up that does not look at the outcome (used by `as_completed`, `wait`).
    pub(crate) fn on_done(&self, notify: impl FnOnce() + Send + 'static) {
        self.add_done_callback(move |_| notify());
    }

    /// Blocks until done or until `deadline`; returns whether the future is done.
    ///
    /// On a pool's worker thread, it runs other queued tasks of that pool while it waits, so a
    /// task that waits for a task it submitted cannot deadlock the pool.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.shared().finished.load(Ordering::Acquire) {
            return true;
        }
        crate::thread_pool::help_until(|| self.is_done(), deadline);
        // Poll briefly before blocking, yielding so the workers keep the cores.
        let budget = POLL_BUDGET.get();
        let waiting_since = Instant::now();
        let poll_until = waiting_since + budget;
        while !self.shared().finished.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= poll_until || deadline.is_some_and(|d| now >= d) {
                break;
            }
            std::thread::yield_now();
        }
        let done = self.block_until(deadline);
        // Waking from a block adds up to another poll's worth of latency: a wait this short
        // would have been caught by polling.
        let short = waiting_since.elapsed() <= 2 * SPIN_BEFORE_BLOCKING;
        POLL_BUDGET.set(if short {
            (budget * 2).clamp(Duration::from_micros(1), SPIN_BEFORE_BLOCKING)
        } else {
            budget / 2
        });
        done
    }

    /// Blocks on the condition variable until done or until `deadline`.
    fn block_until(&self, deadline: Option<Instant>) -> bool {
        let shared = self.shared();
        let mut inner = shared.inner.lock();
        while !matches!(inner.stage, Stage::Done) {
            match deadline {
                None => shared.done.wait(&mut inner),
                Some(deadline) => {
                    if shared.done.wait_until(&mut inner, deadline).timed_out() {
                        return matches!(inner.stage, Stage::Done);
                    }
                }
            }
        }
        true
    }

    fn take(&self) -> Result<T, Error> {
        self.shared()
            .inner
            .lock()
            .outcome
            .take()
            .unwrap_or(Err(Error::ResultTaken))
    }
}

impl<T> std::future::Future for Future<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.shared().inner.lock();
        if matches!(inner.stage, Stage::Done) {
            return Poll::Ready(inner.outcome.take().unwrap_or(Err(Error::ResultTaken)));
        }
        match &mut inner.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl<T> fmt::Debug for Future<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared().inner.lock();
        let stage = match (&inner.stage, inner.cancelled, &inner.outcome) {
            (Stage::Pending, ..) => "pending",
            (Stage::Running, ..) => "running",
            (Stage::Done, true, _) => "cancelled",
            (Stage::Done, false, Some(Ok(_))) => "done (ok)",
            (Stage::Done, false, Some(Err(_))) => "done (error)",
            (Stage::Done, false, None) => "done (result taken)",
        };
        f.debug_struct("Future")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::promise as pair;
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

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
        let (promise, future) = pair::<u32>();
        future.add_done_callback(|_| panic!("callback panic"));
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
}
