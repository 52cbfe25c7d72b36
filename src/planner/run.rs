//! Running a [`Plan`]: on its own pool, inline when it decided to stay serial, or by handing
//! its settings to any executor's [`Map`] (`map.with_plan(&plan)`).

use std::sync::OnceLock;

use super::Plan;
use crate::{Error, ExecutorKind, Map, MapSettings, Payload, ProcessPool, ThreadPool};

/// A plan's chunk size, and its decision to stay serial.
impl From<&Plan> for MapSettings {
    fn from(plan: &Plan) -> Self {
        MapSettings {
            chunksize: Some(plan.chunksize.max(1)),
            serial: !plan.parallel,
        }
    }
}

impl Plan {
    /// Applies `f` to every item with the planned configuration: serially on the calling
    /// thread if the plan stays serial, otherwise on a thread pool of the planned size
    /// (started on the first call, kept for later ones, joined when the plan is dropped) with
    /// the planned chunk size. The result is an ordinary [`Map`]: lazy, ordered, bounded.
    ///
    /// `f` may be any closure and the items anything `Send`: serde is needed only to run on a
    /// process pool, which [`map_fn`](Plan::map_fn) does. For items that borrow local data,
    /// run a scoped map with the plan's settings:
    /// `pool.scope(|s| s.map(f, items).with_plan(&plan))`.
    ///
    /// A panic in `f` fails only the item it happened on, as [`Error::Panicked`], in both modes.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the pool cannot start its workers, and [`Error::InvalidArgument`] if
    /// the plan chose a process pool (use [`map_fn`](Plan::map_fn) then).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use parexec::Planner;
    ///
    /// let blocks: Vec<Arc<Vec<u8>>> = (0..64).map(|i| Arc::new(vec![i as u8; 4096])).collect();
    /// let salt = 7_u64;
    /// let digest = move |block: Arc<Vec<u8>>| {
    ///     std::thread::sleep(Duration::from_millis(1));
    ///     block.iter().map(|&b| u64::from(b)).sum::<u64>() + salt
    /// };
    /// let plan = Planner::new().pilot(&blocks, digest).plan()?;
    /// let sums = plan.map(digest, blocks)?.collect_vec()?;
    /// assert_eq!(sums[3], 3 * 4096 + 7);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn map<A, R, F, I>(&self, f: F, items: I) -> Result<Map<'_, I::IntoIter, R>, Error>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        if !self.parallel {
            crate::unwind::install_hook();
            return Ok(Map::inline(items.into_iter(), f).with_plan(self));
        }
        match self.kind {
            ExecutorKind::Threads => {
                let pool = started(&self.threads, || ThreadPool::new(self.workers))?;
                Ok(pool.map(f, items).with_plan(self))
            }
            ExecutorKind::Processes | ExecutorKind::Mpi => Err(Error::InvalidArgument(format!(
                "this plan runs on {}, which takes a plain `fn` with serde payloads: run it \
                 with Plan::map_fn",
                self.kind
            ))),
        }
    }

    /// Like [`map`](Plan::map), for a plain function with serde payloads, which runs on
    /// whichever executor the plan chose, a process pool included (plan those with
    /// [`Planner::pilot_fn`](crate::Planner::pilot_fn)).
    ///
    /// A panic in `f` fails only the item it happened on, as [`Error::Panicked`].
    ///
    /// # Errors
    ///
    /// Whatever starting the pool returns: [`Error::Io`] if it cannot start its workers, and
    /// for a process pool also [`Error::Handshake`] (no `parexec::init()` in `main`) or
    /// [`Error::Unsupported`] outside Unix.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::Planner;
    ///
    /// fn slow_square(x: u64) -> u64 {
    ///     std::thread::sleep(Duration::from_millis(1));
    ///     x * x
    /// }
    ///
    /// let items: Vec<u64> = (0..200).collect();
    /// let plan = Planner::new().pilot_fn(&items, slow_square).plan()?;
    /// assert!(plan.parallel, "sleeping work overlaps on threads\n{plan}");
    /// let out: Vec<u64> = plan.map_fn(slow_square, items)?.collect::<Result<_, _>>()?;
    /// assert_eq!(out[199], 199 * 199);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn map_fn<A, R, I>(&self, f: fn(A) -> R, items: I) -> Result<Map<'_, I::IntoIter, R>, Error>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        if !self.parallel {
            return self.map(f, items);
        }
        Ok(match self.kind {
            ExecutorKind::Threads => return self.map(f, items),
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
