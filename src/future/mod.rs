//! The future state machine shared by every executor.
//!
//! A task's producer side ([`Promise`]) and consumer side ([`Future`]) share one state that
//! moves through `Pending`, `Running`, `Delivering` (callbacks run, outside the lock) and
//! `Done`; a future resolves exactly once, and a promise dropped unresolved resolves it with
//! `Cancelled` or `Shutdown`. The design notes, with the stage diagram, the callback rules,
//! the embedded state and how a blocked thread helps its executor, are in `README.md` beside
//! this file.

#[cfg(all(test, loom))]
mod loom;
mod state;
#[cfg(test)]
mod test;
mod wait;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub(crate) use self::state::{EmbedsState, Promise, Shared, StateHolder, promise};
pub(crate) use self::wait::{help_until, register_helper};

use self::state::{Stage, StateRef, run_callback};
use crate::Error;

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
        self.state.shared()
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
            Stage::Delivering(_) | Stage::Done => inner.cancelled,
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
        self.shared().inner.lock().is_resolved()
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
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (started, wait_start) = std::sync::mpsc::channel();
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let busy = pool.submit(move || { started.send(()).unwrap(); gate.recv().is_ok() });
    /// wait_start.recv().unwrap();
    /// let queued = pool.submit(|| 1);
    /// assert!(!queued.is_cancelled());
    /// assert!(queued.cancel(), "still queued behind the busy worker");
    /// assert!(queued.is_cancelled());
    /// assert!(matches!(queued.result(), Err(parexec::Error::Cancelled)));
    /// assert!(!busy.cancel(), "already running");
    /// assert!(!busy.is_cancelled());
    /// release.send(()).unwrap();
    /// assert!(busy.result()?);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.shared().inner.lock().cancelled
    }

    /// Registers `callback` to run once the future is done, with a reference to the outcome.
    ///
    /// Callbacks run exactly once, in the order added, on the thread that finishes the task;
    /// if the future is already done, the callback runs at once on this thread (or, if another
    /// thread is running this future's callbacks at that moment, after them on that thread).
    /// A callback that panics is ignored (its panic is caught); it cannot harm the worker. If
    /// the result was already taken by [`result_timeout`](Future::result_timeout), the callback
    /// sees `Err(&Error::ResultTaken)`.
    ///
    /// Callbacks run outside the future's lock, so a callback may call this future's methods
    /// (through a shared handle) or wait for a thread that does. [`result`](Future::result),
    /// [`result_timeout`](Future::result_timeout) and `.await` return once the callbacks have
    /// run; called from within one of the future's own callbacks, which already holds the
    /// outcome, they return [`Error::ResultTaken`].
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
        let shared = self.shared();
        let mut inner = shared.inner.lock();
        if !matches!(inner.stage, Stage::Done) {
            inner.callbacks.push(Box::new(callback));
            return;
        }
        match inner.outcome.take() {
            // Lent to the callback outside the lock, and to any added meanwhile.
            Some(outcome) => shared.deliver(inner, vec![Box::new(callback)], outcome),
            None => {
                drop(inner);
                run_callback(Box::new(callback), Err(&Error::ResultTaken));
            }
        }
    }

    /// Whether the future is done with an error (used by `wait(.., FirstException, ..)`).
    pub(crate) fn is_failed(&self) -> bool {
        let inner = self.shared().inner.lock();
        inner.is_resolved() && inner.failed
    }

    /// Registers a wake-up that does not look at the outcome (used by `as_completed`, `wait`).
    pub(crate) fn on_done(&self, notify: impl FnOnce() + Send + 'static) {
        self.add_done_callback(move |_| notify());
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
        if inner.can_take() {
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
            (_, true, _) => "cancelled",
            (Stage::Done, false, None) => "done (result taken)",
            (_, false, _) if inner.failed => "done (error)",
            (_, false, _) => "done (ok)",
        };
        f.debug_struct("Future")
            .field("stage", &stage)
            .finish_non_exhaustive()
    }
}
