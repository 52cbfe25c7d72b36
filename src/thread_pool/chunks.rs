//! A `map`'s chunks on the thread pool: one job per chunk, in a slot that a worker or the
//! map's consumer empties, whichever comes first. The same code serves a scoped map, whose
//! chunks borrow the caller's stack: [`Enqueue`] is the one difference.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::ThreadPool;
use super::counters::WorkerCounters;
use super::job::{self, Job, JobFor};
use crate::Map;
use crate::future::promise;
use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched, Slots};

/// Where a chunk's job goes: the pool's queue for jobs that borrow nothing (`'job` is
/// `'static`), or a [`Scope`](super::Scope) that waits for jobs borrowing its caller's stack.
pub(super) trait Enqueue<'job> {
    /// `job`, tied to whatever must wait for it to run or be dropped (a scope's ticket).
    fn tie(&self, job: JobFor<'job>) -> JobFor<'job>;

    /// Queues `job` on the pool.
    ///
    /// # Safety
    ///
    /// `job` must reach the data it borrows for `'job` only through jobs returned by
    /// [`tie`](Enqueue::tie) on the same queue.
    unsafe fn push(&self, job: JobFor<'job>);
}

/// A chunk's job, shared by the queue and the map's consumer: whoever takes it out first runs
/// it.
type Slot<'job> = Arc<Mutex<Option<JobFor<'job>>>>;

/// The queue's hold on a chunk's slot. Dropped unrun (a cancelling shutdown drains the queue,
/// or a push after the workers exited), it empties the slot, so the chunk's promise resolves
/// its future as cancelled even while the consumer still holds the slot to run it itself (and
/// a scoped chunk's ticket is released even if its map was leaked).
struct Queued<'job>(Option<Slot<'job>>);

impl Queued<'_> {
    fn run(mut self, counters: &WorkerCounters) {
        if let Some(job) = self.0.take().and_then(|slot| slot.lock().take()) {
            job(counters);
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        // The job is dropped after the slot's lock is released: dropping it resolves the
        // chunk's future, which runs its done-callbacks.
        let unrun = self.0.take().and_then(|slot| slot.lock().take());
        drop(unrun);
    }
}

impl Enqueue<'static> for ThreadPool {
    fn tie(&self, job: JobFor<'static>) -> JobFor<'static> {
        job
    }

    unsafe fn push(&self, job: JobFor<'static>) {
        self.registry.push(Job::Boxed(job));
    }
}

/// Sends map chunks to the pool as jobs that share one `f`, through `queue`.
struct ThreadChunks<'p, F, Q> {
    pool: &'p ThreadPool,
    queue: &'p Q,
    f: Arc<F>,
}

/// A map of `f` over `items` on `pool`, its chunks queued through `queue`: the pool itself, or
/// a scope.
pub(super) fn map<'p, 'job: 'p, A, R, F, I, Q, K>(
    pool: &'p ThreadPool,
    queue: &'p Q,
    f: F,
    items: I,
) -> Map<'p, I::IntoIter, R, K>
where
    F: Fn(A) -> R + Send + Sync + 'job,
    A: Send + 'job,
    R: Send + 'job,
    I: IntoIterator<Item = A>,
    Q: Enqueue<'job> + Sync,
{
    let f = Arc::new(f);
    Map::new(items.into_iter(), Box::new(ThreadChunks { pool, queue, f }))
}

impl<F, Q> ThreadChunks<'_, F, Q> {
    /// Queues `run(f)` as a chunk's job.
    fn dispatch_with<'job, R: Send + 'job>(
        &self,
        run: impl FnOnce(&F) -> Chunk<R> + Send + 'job,
    ) -> Dispatched<'job, R>
    where
        F: Send + Sync + 'job,
        Q: Enqueue<'job>,
    {
        let registry = &self.pool.registry;
        if registry.is_shut_down() {
            return Dispatched::ready(Err(crate::Error::Shutdown));
        }
        let f = Arc::clone(&self.f);
        let (promise, future) = promise();
        // Whoever takes the job out of the slot first runs it: a worker, or the consumer.
        let enqueued = registry.admit();
        let job = self
            .queue
            .tie(job::boxed(move || Ok(run(&f)), promise, enqueued));
        let slot: Slot<'job> = Arc::new(Mutex::new(Some(job)));
        let queued = Queued(Some(Arc::clone(&slot)));
        let take_and_run: JobFor<'job> =
            Box::new(move |counters: &WorkerCounters| queued.run(counters));
        // SAFETY: `take_and_run` reaches borrowed data only through the tied job in the slot;
        // once the slot is empty it touches nothing but the slot's own allocation.
        unsafe { self.queue.push(take_and_run) };
        let registry = Arc::clone(registry);
        Dispatched {
            future,
            run_here: Some(Box::new(move || {
                // Taken with the lock released at once: running the job must not hold it.
                let job = slot.lock().take();
                if let Some(job) = job {
                    let started = Instant::now();
                    let counters = registry.overflow_counters();
                    job(counters);
                    counters.add_busy(started.elapsed());
                }
            })),
        }
    }
}

// `'p` is what the map may borrow, `'job` what the jobs may: a scoped map's jobs borrow the
// caller's stack, an ordinary map's nothing at all ('static), while the map borrows the pool.
impl<'p, 'job: 'p, A, R, F, Q> ChunkDispatch<'p, A, R> for ThreadChunks<'_, F, Q>
where
    F: Fn(A) -> R + Send + Sync + 'job,
    A: Send + 'job,
    R: Send + 'job,
    Q: Enqueue<'job>,
{
    fn dispatch(&self, items: Vec<A>) -> Dispatched<'p, R> {
        self.dispatch_with(move |f| Chunk::run(f, items))
    }

    fn run_inline(&self, items: Vec<A>) -> Chunk<R> {
        Chunk::run(&*self.f, items)
    }

    fn workers(&self) -> usize {
        self.pool.workers()
    }

    fn chunk_overhead(&self) -> Duration {
        self.pool.chunk_overhead
    }

    fn in_place(&self) -> Option<&dyn DispatchInto<'p, A, R>> {
        Some(self)
    }
}

impl<'p, 'job: 'p, A, R, F, Q> DispatchInto<'p, A, R> for ThreadChunks<'_, F, Q>
where
    F: Fn(A) -> R + Send + Sync + 'job,
    A: Send + 'job,
    R: Send + 'job,
    Q: Enqueue<'job>,
{
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<'p, R> {
        self.dispatch_with(move |f| Chunk::run_into(f, items, slots))
    }

    fn run_inline_into(&self, items: Vec<A>, slots: Slots<R>) -> Chunk<R> {
        Chunk::run_into(&*self.f, items, slots)
    }
}
