//! [`MapSettings`]: how a map runs, as a plan (or anything else) decided it.

/// How a [`Map`](crate::Map) runs: what [`Map::with_plan`](crate::Map::with_plan) applies.
///
/// A [`Plan`](crate::Plan) converts into one (`map.with_plan(&plan)`), so a map never needs to
/// know about the planner; settings can also be written by hand.
///
/// ```
/// use parexec::{MapSettings, ThreadPool};
///
/// let mut settings = MapSettings::default();
/// settings.chunksize = Some(100);
/// settings.serial = true;
/// let pool = ThreadPool::new(2)?;
/// let caller = std::thread::current().id();
/// let here = pool
///     .map(move |x: u32| (x, std::thread::current().id() == caller), 0..1000)
///     .with_plan(settings)
///     .collect_vec()?;
/// assert!(here.iter().all(|&(_, on_caller)| on_caller), "serial runs on the consuming thread");
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct MapSettings {
    /// Items per chunk; `None` keeps the automatic size. `Some(0)` is invalid, as for
    /// [`Map::chunksize`](crate::Map::chunksize).
    pub chunksize: Option<usize>,
    /// `true` runs every chunk on the consuming thread, one chunk at a time as results are
    /// needed, instead of on the pool: a plan that decided to stay serial.
    pub serial: bool,
}
