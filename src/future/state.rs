//! The state a future shares with its producer, and the producer side ([`Promise`]).
//!
//! See the notes in `mod.rs` for the stages.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

use parking_lot::{Condvar, Mutex, MutexGuard};

use crate::{Error, unwind};

pub(super) type Callback<T> = Box<dyn FnOnce(Result<&T, &Error>) + Send>;

pub(super) enum Stage {
    Pending,
    Running,
    Done,
}

pub(super) struct Inner<T> {
    pub(super) stage: Stage,
    pub(super) cancelled: bool,
    /// `Some` from resolution until a `result*` call moves it out.
    pub(super) outcome: Option<Result<T, Error>>,
    pub(super) callbacks: Vec<Callback<T>>,
    pub(super) waker: Option<Waker>,
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
            Stage::Running | Stage::Done => false,
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

    /// Moves to `Done` (unless already there), runs the callbacks, wakes every waiter.
    pub(super) fn finish(&self, mut inner: MutexGuard<'_, Inner<T>>, outcome: Result<T, Error>) {
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
pub(super) fn run_callback<T>(callback: Callback<T>, outcome: Result<&T, &Error>) {
    let _ = unwind::catch(|| callback(outcome));
}
