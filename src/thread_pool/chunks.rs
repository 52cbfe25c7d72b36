//! A `map`'s chunks on the thread pool: one job per chunk, in a slot that a worker or the
//! map's consumer empties, whichever comes first.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::ThreadPool;
use super::counters::WorkerCounters;
use super::job::{self, Job, JobFor};
use crate::future::promise;
use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched, Slots};

/// A chunk's job, shared by the queue and the map's consumer: whoever takes it out first runs
/// it.
type Slot = Arc<Mutex<Option<JobFor<'static>>>>;

/// The queue's hold on a chunk's slot. Dropped unrun (a cancelling shutdown drains the queue,
/// or a push after the workers exited), it empties the slot, so the chunk's promise resolves
/// its future as cancelled even while the consumer still holds the slot to run it itself.
struct Queued(Option<Slot>);

impl Queued {
    fn run(mut self, counters: &WorkerCounters) {
        if let Some(job) = self.0.take().and_then(|slot| slot.lock().take()) {
            job(counters);
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        // The job is dropped after the slot's lock is released: dropping it resolves the
        // chunk's future, which runs its done-callbacks.
        let unrun = self.0.take().and_then(|slot| slot.lock().take());
        drop(unrun);
    }
}

/// Sends map chunks to the pool as jobs that share one `f`.
pub(super) struct ThreadChunks<'p, F> {
    pub(super) pool: &'p ThreadPool,
    pub(super) f: Arc<F>,
}

impl<F> ThreadChunks<'_, F> {
    /// Queues `run(f)` as a chunk's job.
    fn dispatch_with<R: Send + 'static>(
        &self,
        run: impl FnOnce(&F) -> Chunk<R> + Send + 'static,
    ) -> Dispatched<R>
    where
        F: Send + Sync + 'static,
    {
        let registry = &self.pool.registry;
        if registry.is_shut_down() {
            return Dispatched::ready(Err(crate::Error::Shutdown));
        }
        let f = Arc::clone(&self.f);
        let (promise, future) = promise();
        // Whoever takes the job out of the slot first runs it: a worker, or the consumer.
        let enqueued = registry.admit();
        let slot: Slot = Arc::new(Mutex::new(Some(job::boxed(
            move || Ok(run(&f)),
            promise,
            enqueued,
        ))));
        let queued = Queued(Some(Arc::clone(&slot)));
        registry.push(Job::Boxed(Box::new(move |counters: &WorkerCounters| {
            queued.run(counters);
        })));
        let registry = Arc::clone(registry);
        Dispatched {
            future,
            run_here: Some(Box::new(move || {
                let job = slot.lock().take();
                if let Some(job) = job {
                    Job::Boxed(job).run_timed(registry.overflow_counters());
                }
            })),
        }
    }
}

impl<A, R, F> ChunkDispatch<A, R> for ThreadChunks<'_, F>
where
    F: Fn(A) -> R + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    fn dispatch(&self, items: Vec<A>) -> Dispatched<R> {
        self.dispatch_with(move |f| Chunk::run(f, items))
    }

    fn workers(&self) -> usize {
        self.pool.workers()
    }

    fn chunk_overhead(&self) -> Duration {
        self.pool.chunk_overhead
    }

    fn in_place(&self) -> Option<&dyn DispatchInto<A, R>> {
        Some(self)
    }
}

impl<A, R, F> DispatchInto<A, R> for ThreadChunks<'_, F>
where
    F: Fn(A) -> R + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<R> {
        self.dispatch_with(move |f| Chunk::run_into(f, items, slots))
    }
}
