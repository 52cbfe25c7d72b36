//! Scoped tasks: tasks that borrow from the caller's stack, with the lifetime erasure that is
//! the thread pool's one piece of `unsafe`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::ThreadPool;
use super::counters::WorkerCounters;
use super::job::{self, Job, JobFor};
use crate::future::{self, promise};
use crate::{Error, Future};

pub(super) struct ScopeState {
    running: Mutex<usize>,
    all_done: Condvar,
}

/// Counts a scoped task as finished when dropped, after the task and its captures are gone,
/// whether the task ran or was discarded unrun.
struct ScopeTicket {
    state: Arc<ScopeState>,
}

impl Drop for ScopeTicket {
    fn drop(&mut self) {
        let mut running = self.state.running.lock();
        *running -= 1;
        if *running == 0 {
            self.state.all_done.notify_all();
        }
    }
}

/// A scope for tasks that borrow from the enclosing stack frame; see [`ThreadPool::scope`].
///
/// ```
/// let pool = parexec::ThreadPool::new(2)?;
/// let mut counts = [0_usize; 2];
/// let text = "one two three";
/// pool.scope(|s| {
///     let (a, b) = counts.split_at_mut(1);
///     s.submit(|| a[0] = text.split(' ').count());
///     s.submit(|| b[0] = text.len());
/// });
/// assert_eq!(counts, [3, 13]);
/// # Ok::<(), parexec::Error>(())
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope ThreadPool,
    state: Arc<ScopeState>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    pub(super) fn new(pool: &'scope ThreadPool) -> Self {
        Scope {
            pool,
            state: Arc::new(ScopeState {
                running: Mutex::new(0),
                all_done: Condvar::new(),
            }),
            scope: PhantomData,
            env: PhantomData,
        }
    }

    /// Queues `task`, which may borrow anything that outlives the scope, and returns the
    /// future of its result. A panic in `task` resolves the future to [`Error::Panicked`].
    /// The future may be ignored: the scope waits for the task either way.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let data = [1, 2, 3];
    /// let doubled = pool.scope(|s| s.submit(|| data.map(|x| x * 2)).result());
    /// assert_eq!(doubled?, [2, 4, 6]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn submit<F, T>(&'scope self, task: F) -> Future<T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let registry = &self.pool.registry;
        if registry.is_shut_down() {
            return Future::ready(Err(Error::Shutdown));
        }
        *self.state.running.lock() += 1;
        let ticket = ScopeTicket {
            state: Arc::clone(&self.state),
        };
        let (promise, future) = promise();
        let scoped = job::boxed(move || Ok(task()), promise, registry.admit());
        let with_ticket: JobFor<'scope> = Box::new(move |counters: &WorkerCounters| {
            scoped(counters);
            drop(ticket);
        });
        // SAFETY: the job borrows data that lives for 'scope. `ThreadPool::scope` does not
        // return (not even by unwinding: the body runs under `catch_unwind`) before
        // `wait_all` has seen every `ScopeTicket` dropped, and a ticket is dropped only after
        // the job that owns it has been consumed or dropped, together with everything it
        // captured. So no job outlives 'scope, and extending its lifetime to 'static for the
        // queue is never observable. Only the lifetime changes; the layout is identical.
        let job = unsafe { std::mem::transmute::<JobFor<'scope>, JobFor<'static>>(with_ticket) };
        registry.push(Job::Boxed(job));
        future
    }

    /// Returns once every task spawned in the scope has run (or been discarded) and dropped
    /// its captures; a worker thread runs queued jobs meanwhile.
    pub(super) fn wait_all(&self) {
        future::help_until(&|| *self.state.running.lock() == 0, None);
        let mut running = self.state.running.lock();
        while *running > 0 {
            self.state.all_done.wait(&mut running);
        }
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &*self.state.running.lock())
            .finish_non_exhaustive()
    }
}
