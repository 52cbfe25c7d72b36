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

/// Counts a scoped task as finished when dropped; [`ScopedJob`] drops it only after the task
/// and its captures are gone, whether the task ran or was discarded unrun.
struct ScopeTicket {
    state: Arc<ScopeState>,
}

/// A scoped task as the queue holds it. The fields drop in declaration order, and that order
/// is what makes the lifetime erasure in [`Scope::submit`] sound: the job (the user's closure
/// with everything it captured, and the promise) is gone before the ticket lets the scope
/// return, as in the standard library's scoped-thread packet.
struct ScopedJob<'scope> {
    job: JobFor<'scope>,
    ticket: ScopeTicket,
}

impl ScopedJob<'_> {
    fn run(self, counters: &WorkerCounters) {
        let ScopedJob { job, ticket } = self;
        // The call consumes the job: its captures are dropped inside it, whether it returns
        // or unwinds, so `ticket` (dropped here or while unwinding this frame) comes last.
        job(counters);
        drop(ticket);
    }
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
        let scoped = ScopedJob {
            job: job::boxed(move || Ok(task()), promise, registry.admit()),
            ticket,
        };
        // Captures `scoped` whole (it is used by value), so dropping this closure unrun drops
        // the `ScopedJob`, fields in declaration order.
        let with_ticket: JobFor<'scope> =
            Box::new(move |counters: &WorkerCounters| scoped.run(counters));
        // SAFETY: the job borrows data that lives for 'scope, so nothing of it (the user's
        // closure, its captures, the promise) may be used or dropped once `ThreadPool::scope`
        // has returned. `scope` does not return, not even by unwinding (the body runs under
        // `catch_unwind`), before `wait_all` has seen every `ScopeTicket` dropped, and a
        // `ScopedJob` drops its ticket only after its job is gone, on every path:
        // * run: `ScopedJob::run` consumes the job by calling it (`run_task` catches a panic
        //   of the task, which drops the task's captures inside the call) and then drops the
        //   ticket;
        // * a panic escaping the job itself: the call consumed the job, so unwinding drops
        //   its captures inside the call, before it reaches `run`'s frame and the ticket;
        // * never run (`shutdown_cancel`, or a push after the workers exited, drains the
        //   queue): dropping this closure drops its one capture, the `ScopedJob`, whose fields
        //   drop in declaration order, the job before the ticket.
        // So no part of the job outlives 'scope, and extending its lifetime to 'static for the
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

#[cfg(test)]
mod test;
