//! Scoped tasks and maps: work that borrows from the caller's stack, with the lifetime
//! erasure that is the thread pool's one piece of `unsafe`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::ThreadPool;
use super::chunks::{self, Enqueue};
use super::counters::WorkerCounters;
use super::job::{self, Job, JobFor};
use crate::future::{self, promise};
use crate::{Error, Future, Map, Scoped};

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
/// is what makes the lifetime erasure of a scope's `push` sound: the job (the user's closure
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
        let (promise, future) = promise();
        let job = self.tie(job::boxed(move || Ok(task()), promise, registry.admit()));
        // SAFETY: `job` is its own tied job.
        unsafe { self.push(job) };
        future
    }

    /// Applies `f` to every item on the pool, like [`ThreadPool::map`], but `f` and the items
    /// may borrow anything that outlives the scope: a lazy iterator of `Result<R, Error>` in
    /// input order, with the same bounded window, chunking, cancellation on drop and
    /// [`collect_vec`](Map::collect_vec) as any [`Map`]. It is marked [`Scoped`]: its results
    /// may borrow too, so its `collect` is [`Iterator::collect`].
    ///
    /// The scope does not end while any chunk may still touch borrowed data: a chunk that has
    /// started is waited for, including when the map is dropped early or the body panics. A
    /// panic in `f` fails only the item it happened on, as [`Error::Panicked`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let table: Vec<u64> = (0..1000).map(|i| i * i).collect();
    /// let words = String::from("alpha beta gamma");
    /// let (sums, lengths) = pool.scope(|s| {
    ///     let sums = s.map(|i: usize| table[i] + 1, 0..table.len()).collect_vec();
    ///     let lengths: Vec<usize> = s
    ///         .map(|w: &str| w.len(), words.split(' '))
    ///         .collect::<Result<_, _>>()?;
    ///     Ok::<_, parexec::Error>((sums?, lengths))
    /// })?;
    /// assert_eq!(sums[999], 998_002);
    /// assert_eq!(lengths, [5, 4, 5]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    ///
    /// The map borrows the scope, so it cannot outlive it.
    pub fn map<A, R, F, I>(&'scope self, f: F, items: I) -> Map<'scope, I::IntoIter, R, Scoped>
    where
        F: Fn(A) -> R + Send + Sync + 'scope,
        A: Send + 'scope,
        R: Send + 'scope,
        I: IntoIterator<Item = A>,
    {
        chunks::map(self.pool, self, f, items)
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

impl<'scope> Enqueue<'scope> for Scope<'scope, '_> {
    /// Counts `job` as running until it has run, or been dropped with everything it captured.
    fn tie(&self, job: JobFor<'scope>) -> JobFor<'scope> {
        *self.state.running.lock() += 1;
        let scoped = ScopedJob {
            job,
            ticket: ScopeTicket {
                state: Arc::clone(&self.state),
            },
        };
        // Captures `scoped` whole (it is used by value), so dropping this closure unrun drops
        // the `ScopedJob`, fields in declaration order.
        Box::new(move |counters: &WorkerCounters| scoped.run(counters))
    }

    unsafe fn push(&self, job: JobFor<'scope>) {
        // SAFETY: `job` borrows data that lives for 'scope, and by the contract of `push`
        // reaches it only through tied jobs, so nothing of a tied job (the user's closure, its
        // captures, the promise) may be used or dropped once `ThreadPool::scope` has returned.
        // `scope` does not return, not even by unwinding (the body runs under
        // `catch_unwind`), before `wait_all` has seen every `ScopeTicket` dropped, and a
        // `ScopedJob` drops its ticket only after its job is gone, on every path:
        // * run: `ScopedJob::run` consumes the job by calling it (`run_task` catches a panic
        //   of the task, which drops the task's captures inside the call) and then drops the
        //   ticket;
        // * a panic escaping the job itself: the call consumed the job, so unwinding drops
        //   its captures inside the call, before it reaches `run`'s frame and the ticket;
        // * never run (`shutdown_cancel`, or a push after the workers exited, drains the
        //   queue): dropping the tied closure drops its one capture, the `ScopedJob`, whose
        //   fields drop in declaration order, the job before the ticket.
        // A map chunk's queued closure holds only its slot; once the tied job is out of the
        // slot it touches nothing borrowed. So no borrowed data is reached after 'scope, and
        // extending the job's lifetime to 'static for the queue is never observable. Only the
        // lifetime changes; the layout is identical.
        let job = unsafe { std::mem::transmute::<JobFor<'scope>, JobFor<'static>>(job) };
        self.pool.registry.push(Job::Boxed(job));
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
