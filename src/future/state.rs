//! The state a future shares with its producer, and the producer side ([`Promise`]).
//!
//! See the notes in `mod.rs` for the stages.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use crate::sync::{AtomicBool, Condvar, Mutex, MutexGuard, ThreadId, current_thread_id};
use crate::{Error, unwind};

pub(super) type Callback<T> = Box<dyn FnOnce(Result<&T, &Error>) + Send>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Pending,
    Running,
    /// Resolved, with the outcome lent to done-callbacks that this thread runs outside the
    /// lock. Callbacks added meanwhile join the queue this thread runs.
    Delivering(ThreadId),
    /// Resolved, the outcome published (or taken).
    Done,
}

pub(super) struct Inner<T> {
    pub(super) stage: Stage,
    pub(super) cancelled: bool,
    /// Whether the outcome is an error: known from resolution on, while the outcome itself may
    /// be lent to callbacks or taken.
    pub(super) failed: bool,
    /// `Some` from publication until a `result*` call moves it out.
    pub(super) outcome: Option<Result<T, Error>>,
    pub(super) callbacks: Vec<Callback<T>>,
    pub(super) waker: Option<Waker>,
}

impl<T> Inner<T> {
    /// Resolved: the outcome is published or being delivered to callbacks.
    pub(super) fn is_resolved(&self) -> bool {
        matches!(self.stage, Stage::Delivering(_) | Stage::Done)
    }

    /// Whether a `result*` call may take the outcome now: it is published, or the calling
    /// thread is the one running the callbacks (a callback asking its own future for the
    /// result, which it already holds by reference, gets `ResultTaken` instead of waiting
    /// for itself).
    pub(super) fn can_take(&self) -> bool {
        match self.stage {
            Stage::Done => true,
            Stage::Delivering(deliverer) => deliverer == current_thread_id(),
            Stage::Pending | Stage::Running => false,
        }
    }
}

/// The state a future shares with whatever resolves it.
pub(crate) struct Shared<T> {
    pub(super) inner: Mutex<Inner<T>>,
    pub(super) done: Condvar,
    /// Mirrors `stage == Done` so waiters can poll without taking the lock.
    pub(super) finished: AtomicBool,
}

/// A task allocation that carries its future's state; see the module notes.
pub(crate) trait EmbedsState<T>: Send + Sync {
    fn state(&self) -> &Shared<T>;
}

/// Where a future's state lives: alone, or inside the allocation of the task that resolves it.
pub(super) enum StateRef<T> {
    Alone(Arc<Shared<T>>),
    Embedded(Arc<dyn EmbedsState<T>>),
}

impl<T> StateRef<T> {
    pub(super) fn shared(&self) -> &Shared<T> {
        match self {
            StateRef::Alone(shared) => shared,
            StateRef::Embedded(task) => task.state(),
        }
    }
}

/// How a [`Promise`] reaches its future's state: an `Arc` of the state alone, or the task
/// allocation that embeds it ([`Embedded`]), both without dynamic dispatch.
pub(crate) trait StateHolder<T> {
    fn shared(&self) -> &Shared<T>;
}

impl<T> StateHolder<T> for Arc<Shared<T>> {
    #[inline]
    fn shared(&self) -> &Shared<T> {
        self
    }
}

/// A task allocation that carries its future's state, as its promise holds it.
pub(crate) struct Embedded<C>(Arc<C>);

impl<T, C: EmbedsState<T>> StateHolder<T> for Embedded<C> {
    #[inline]
    fn shared(&self) -> &Shared<T> {
        self.0.state()
    }
}

/// Creates a connected promise/future pair in the `Pending` stage.
pub(crate) fn promise<T>() -> (Promise<T>, super::Future<T>) {
    let shared = Arc::new(Shared::new());
    (
        Promise {
            state: Arc::clone(&shared),
            resolved: false,
            outcome: PhantomData,
        },
        super::Future {
            state: StateRef::Alone(shared),
        },
    )
}

/// The producer side of a [`Future`](super::Future), held by whoever runs the task: the one
/// way an executor starts and resolves a future.
pub(crate) struct Promise<T, H: StateHolder<T> = Arc<Shared<T>>> {
    state: H,
    resolved: bool,
    outcome: PhantomData<fn(T)>,
}

impl<T, C: EmbedsState<T>> Promise<T, Embedded<C>> {
    /// The promise of a task whose allocation carries the future's state (see
    /// [`Future::embedded`](super::Future::embedded)); it adds no allocation.
    pub(crate) fn embedded(task: Arc<C>) -> Self {
        Promise {
            state: Embedded(task),
            resolved: false,
            outcome: PhantomData,
        }
    }
}

impl<T, H: StateHolder<T>> Promise<T, H> {
    /// Moves `Pending` to `Running`. Returns `false` when the future was cancelled (or already
    /// resolved), in which case the task must not run.
    pub(crate) fn start(&self) -> bool {
        self.state.shared().start()
    }

    /// Resolves the future. A future that was cancelled meanwhile keeps its `Cancelled`.
    pub(crate) fn complete(mut self, outcome: Result<T, Error>) {
        self.resolved = true;
        self.state.shared().resolve(outcome);
    }
}

impl<T, H: StateHolder<T>> Drop for Promise<T, H> {
    /// A promise dropped unresolved resolves its future as `Cancelled` (never started) or
    /// `Shutdown` (started), so no consumer waits forever.
    fn drop(&mut self) {
        if !self.resolved {
            self.state.shared().abandon();
        }
    }
}

impl<T, H: StateHolder<T>> fmt::Debug for Promise<T, H> {
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
                failed: false,
                outcome: None,
                callbacks: Vec::new(),
                waker: None,
            }),
            done: Condvar::new(),
            finished: AtomicBool::new(false),
        }
    }

    fn start(&self) -> bool {
        let mut inner = self.inner.lock();
        match inner.stage {
            Stage::Pending => {
                inner.stage = Stage::Running;
                true
            }
            Stage::Running | Stage::Delivering(_) | Stage::Done => false,
        }
    }

    fn resolve(&self, outcome: Result<T, Error>) {
        let inner = self.inner.lock();
        self.finish(inner, outcome);
    }

    /// Resolves the future of a task that will never report an outcome: `Cancelled` if it
    /// never started, `Shutdown` if it did.
    fn abandon(&self) {
        let inner = self.inner.lock();
        let abandoned = if matches!(inner.stage, Stage::Running) {
            Error::Shutdown
        } else {
            Error::Cancelled
        };
        self.finish(inner, Err(abandoned));
    }

    /// Resolves the future unless it already is (a late outcome is dropped, outside the lock):
    /// runs the done-callbacks outside the lock, then publishes the outcome and wakes every
    /// waiter.
    pub(super) fn finish(&self, mut inner: MutexGuard<'_, Inner<T>>, outcome: Result<T, Error>) {
        if inner.is_resolved() {
            drop(inner);
            drop(outcome);
            return;
        }
        inner.failed = outcome.is_err();
        if inner.callbacks.is_empty() {
            self.publish(inner, outcome);
        } else {
            let callbacks = std::mem::take(&mut inner.callbacks);
            self.deliver(inner, callbacks, outcome);
        }
    }

    /// Runs `callbacks`, with the outcome lent to them, on this thread and outside the lock,
    /// then every callback added meanwhile, in order; then publishes the outcome. Running
    /// callbacks outside the lock lets them use their own future (or wait for a thread that
    /// does) without deadlocking; the `Delivering` stage keeps them exactly-once and ordered.
    pub(super) fn deliver(
        &self,
        mut inner: MutexGuard<'_, Inner<T>>,
        mut callbacks: Vec<Callback<T>>,
        outcome: Result<T, Error>,
    ) {
        inner.stage = Stage::Delivering(current_thread_id());
        self.finished.store(false, Ordering::Release);
        drop(inner);
        loop {
            for callback in callbacks.drain(..) {
                run_callback(callback, outcome.as_ref());
            }
            let mut inner = self.inner.lock();
            if inner.callbacks.is_empty() {
                return self.publish(inner, outcome);
            }
            std::mem::swap(&mut callbacks, &mut inner.callbacks);
        }
    }

    /// Stores the outcome for `result*`, moves to `Done`, wakes every waiter.
    fn publish(&self, mut inner: MutexGuard<'_, Inner<T>>, outcome: Result<T, Error>) {
        inner.stage = Stage::Done;
        inner.outcome = Some(outcome);
        self.finished.store(true, Ordering::Release);
        let waker = inner.waker.take();
        drop(inner);
        self.done.notify_all();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// A panicking callback must not unwind into the worker that resolved the future.
pub(super) fn run_callback<T>(callback: Callback<T>, outcome: Result<&T, &Error>) {
    let _ = unwind::catch(|| callback(outcome));
}
