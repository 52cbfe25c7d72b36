//! Running a [`Plan`]: on its own pool, inline when it decided to stay serial, or by handing
//! its chunk size to any executor's [`Map`].

use std::sync::OnceLock;
use std::time::Duration;

use super::Plan;
use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched, Slots};
use crate::{Error, ExecutorKind, Map, Payload, ProcessPool, ThreadPool};

impl Plan {
    /// Applies `f` to every item with the planned configuration: serially on the calling
    /// thread if the plan stays serial, otherwise on a pool of the planned kind and size
    /// (started on the first call, kept for later ones, joined when the plan is dropped) with
    /// the planned chunk size. The result is an ordinary [`Map`]: lazy, ordered, bounded.
    ///
    /// A panic in `f` fails only the item it happened on, as [`Error::Panicked`], in both modes.
    ///
    /// # Errors
    ///
    /// Whatever starting the pool returns: [`Error::Io`] if it cannot start its workers, and
    /// for a process pool also [`Error::Handshake`] (no `parexec::init()` in `main`) or
    /// [`Error::Unsupported`] outside Unix.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::planner::WorkloadProfile;
    /// use parexec::Planner;
    ///
    /// fn slow_square(x: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(1));
    ///     x * x
    /// }
    ///
    /// let items: Vec<u64> = (0..200).collect();
    /// let plan = Planner::new().pilot(&items, slow_square).plan()?;
    /// assert!(plan.parallel, "sleeping work overlaps on threads\n{plan}");
    /// let out: Vec<u64> = plan.map(slow_square, items)?.collect::<Result<_, _>>()?;
    /// assert_eq!(out[199], 199 * 199);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Map<'_, I::IntoIter, R>, Error>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        if !self.parallel {
            crate::unwind::install_hook();
            return Ok(Map::new(items.into_iter(), Box::new(Inline { f })).with_plan(self));
        }
        Ok(match self.kind {
            ExecutorKind::Threads => started(&self.threads, || ThreadPool::new(self.workers))?
                .map(f, items)
                .with_plan(self),
            ExecutorKind::Processes => started(&self.processes, || ProcessPool::new(self.workers))?
                .map(f, items)
                .with_plan(self),
            #[cfg(feature = "mpi")]
            ExecutorKind::Mpi => started(&self.mpi, || {
                // The job's ranks are what they are; other pools may follow this one.
                crate::MpiPool::builder().keep_workers().build()
            })?
            .map(f, items)
            .with_plan(self),
            #[cfg(not(feature = "mpi"))]
            ExecutorKind::Mpi => return Err(super::calibration::without_mpi()),
        })
    }
}

/// The pool in `slot`, started by `start` on first use. Two threads may race to start one;
/// either pool serves, and the spare is shut down as it drops.
fn started<P>(slot: &OnceLock<P>, start: impl FnOnce() -> Result<P, Error>) -> Result<&P, Error> {
    if let Some(pool) = slot.get() {
        return Ok(pool);
    }
    let pool = start()?;
    Ok(slot.get_or_init(|| pool))
}

/// Runs each chunk at once on the dispatching thread: the serial mode of a plan, with the
/// same per-item panic isolation as the pools.
struct Inline<A, R> {
    f: fn(A) -> R,
}

impl<A, R> ChunkDispatch<A, R> for Inline<A, R> {
    fn dispatch(&self, items: Vec<A>) -> Dispatched<R> {
        Dispatched::ready(Ok(Chunk::run(self.f, items)))
    }

    fn workers(&self) -> usize {
        1
    }

    fn chunk_overhead(&self) -> Duration {
        Duration::ZERO
    }

    fn in_place(&self) -> Option<&dyn DispatchInto<A, R>> {
        Some(self)
    }
}

impl<A, R> DispatchInto<A, R> for Inline<A, R> {
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<R> {
        Dispatched::ready(Ok(Chunk::run_into(self.f, items, slots)))
    }
}
