//! What the queue holds, and the one way a task runs: start its promise (skipping a cancelled
//! task), run it under `catch_unwind`, count it, resolve.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use super::counters::WorkerCounters;
use crate::Error;
use crate::future::{EmbedsState, Promise, Shared, StateHolder};
use crate::unwind;

/// A unit of work in the queue. It receives the counters of the thread that runs it.
/// `'task` is `'static` except for scoped tasks, whose lifetime is erased on submission.
pub(super) type JobFor<'task> = Box<dyn FnOnce(&WorkerCounters) + Send + 'task>;

/// What the queue holds.
pub(super) enum Job {
    /// A task from [`ThreadPool::submit`](super::ThreadPool::submit), sharing one allocation
    /// with its future's state.
    Task(QueuedTask),
    /// A boxed job: a map chunk, or a scoped task whose lifetime was erased.
    Boxed(JobFor<'static>),
}

impl Job {
    pub(super) fn run(self, counters: &WorkerCounters) {
        match self {
            Job::Task(task) => task.run(counters),
            Job::Boxed(job) => job(counters),
        }
    }

    /// Runs a job outside a worker's loop (a helping or consuming thread), timing it alone.
    pub(super) fn run_timed(self, counters: &WorkerCounters) {
        let started = Instant::now();
        self.run(counters);
        counters.add_busy(started.elapsed());
    }
}

/// Runs `task` for `promise`: skipped (and counted cancelled) if the future was cancelled
/// while queued; otherwise run under `catch_unwind`, counted, and resolved. `enqueued` is the
/// submission time of a task sampled for queue wait.
#[inline]
pub(super) fn run_task<T, H: StateHolder<T>>(
    task: impl FnOnce() -> Result<T, Error>,
    promise: Promise<T, H>,
    enqueued: Option<Instant>,
    counters: &WorkerCounters,
) {
    if !promise.start() {
        counters.count_cancelled();
        return;
    }
    if let Some(enqueued) = enqueued {
        counters.sample_queue_wait(enqueued);
    }
    let outcome = unwind::catch(task).unwrap_or_else(|panic| Err(panic.into()));
    counters.count_outcome(outcome.is_ok());
    promise.complete(outcome);
}

/// Boxes `task` as a job for `promise`; see [`run_task`]. `'task` is `'static` except in
/// scopes.
pub(super) fn boxed<'task, T, F>(
    task: F,
    promise: Promise<T>,
    enqueued: Option<Instant>,
) -> JobFor<'task>
where
    F: FnOnce() -> Result<T, Error> + Send + 'task,
    T: Send + 'task,
{
    Box::new(move |counters: &WorkerCounters| run_task(task, promise, enqueued, counters))
}

/// A submitted task and its future's state in one allocation: the queue and the future each
/// hold an `Arc` of it, instead of a boxed job owning a promise of a separately allocated
/// state. At no-op task sizes the allocator is the largest cost of a submission.
pub(super) struct TaskCell<T, F> {
    state: Shared<T>,
    /// Taken by the one run of the task, or dropped unrun.
    task: Mutex<Option<F>>,
    /// The submission time of a task sampled for queue wait.
    enqueued: Option<Instant>,
}

impl<T, F> TaskCell<T, F> {
    pub(super) fn new(task: F, enqueued: Option<Instant>) -> Self {
        TaskCell {
            state: Shared::new(),
            task: Mutex::new(Some(task)),
            enqueued,
        }
    }
}

impl<T: Send, F: Send> EmbedsState<T> for TaskCell<T, F> {
    fn state(&self) -> &Shared<T> {
        &self.state
    }
}

/// A [`TaskCell`] as the queue sees it, without its types.
trait Runnable: Send + Sync {
    /// Runs the task unless its future was cancelled, and resolves the future.
    fn run(self: Arc<Self>, counters: &WorkerCounters);
    /// Drops a task that will never run and resolves its future as cancelled.
    fn abandon(self: Arc<Self>);
}

impl<T, F> Runnable for TaskCell<T, F>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    fn run(self: Arc<Self>, counters: &WorkerCounters) {
        // The queue runs a cell once, so the task is there; a cell without one has nothing
        // left to resolve.
        let Some(task) = self.task.lock().take() else {
            counters.count_cancelled();
            return;
        };
        let enqueued = self.enqueued;
        run_task(
            move || Ok(task()),
            Promise::embedded(self),
            enqueued,
            counters,
        );
    }

    fn abandon(self: Arc<Self>) {
        drop(self.task.lock().take());
        drop(Promise::embedded(self));
    }
}

/// The queue's handle on a [`TaskCell`]: dropping it unrun (a cancelling shutdown) abandons
/// the task, as dropping a boxed job drops its promise.
pub(super) struct QueuedTask(Option<Arc<dyn Runnable>>);

impl QueuedTask {
    pub(super) fn new<T, F>(cell: Arc<TaskCell<T, F>>) -> Self
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        QueuedTask(Some(cell))
    }

    fn run(mut self, counters: &WorkerCounters) {
        if let Some(task) = self.0.take() {
            task.run(counters);
        }
    }
}

impl Drop for QueuedTask {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abandon();
        }
    }
}
