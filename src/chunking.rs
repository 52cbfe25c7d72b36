//! The automatic chunk size of `map`.
//!
//! # Design
//!
//! Each chunk costs a fixed overhead `o` (queueing, a wake-up, for processes a frame each way)
//! on top of `c · mu` of work, where `mu` is the mean time per item. The sizer
//!
//! 1. starts at one item, so the first measurement arrives quickly even for slow items;
//! 2. estimates `mu` from the compute time workers report per chunk (EWMA, 0.8 old / 0.2 new,
//!    as joblib does);
//! 3. aims for chunks of at least `10 · o`, i.e. overhead at most [`MAX_OVERHEAD_SHARE`] of a
//!    chunk, and at most [`MAX_CHUNK_DURATION`] so progress and balance stay fine-grained;
//! 4. grows at most 2x per chunk and shrinks at once when items turn out slower;
//! 5. for an input of known length, never exceeds `remaining / (4 · workers)`: at least four
//!    chunks per worker, shrinking towards the tail (guided self-scheduling), so no worker is
//!    left with one long last chunk while the others idle.

use std::time::Duration;

/// The longest a chunk should run, so stragglers and progress reports stay bounded. The
/// planner's cost model clamps its chunk size by the same limit.
pub(crate) const MAX_CHUNK_DURATION: Duration = Duration::from_secs(1);

/// Chunks per worker to keep, at least, for balance.
pub(crate) const MIN_CHUNKS_PER_WORKER: usize = 4;

/// Default in-flight chunks per worker: enough to hide one slow chunk at the head of the
/// order, few enough to keep memory small; shared with the planner's cost model.
pub(crate) const WINDOW_PER_WORKER: usize = 4;

/// The largest share of a chunk's time that the per-chunk overhead may take; shared with the
/// planner's cost model.
pub(crate) const MAX_OVERHEAD_SHARE: f64 = 0.1;

#[derive(Debug, Clone)]
pub(crate) struct ChunkSizer {
    fixed: Option<usize>,
    current: usize,
    item_nanos: Option<f64>,
    overhead_nanos: f64,
    workers: usize,
}

impl ChunkSizer {
    /// An adaptive sizer for `workers` workers whose per-chunk overhead is about `overhead`.
    pub(crate) fn adaptive(workers: usize, overhead: Duration) -> Self {
        ChunkSizer {
            fixed: None,
            current: 1,
            item_nanos: None,
            overhead_nanos: overhead.as_nanos() as f64,
            workers: workers.max(1),
        }
    }

    /// Always `size` items per chunk.
    pub(crate) fn fixed(&mut self, size: usize) {
        self.fixed = Some(size);
    }

    /// Feeds back a finished chunk: `len` items took `compute` on a worker.
    pub(crate) fn observe(&mut self, len: usize, compute: Duration) {
        if len == 0 {
            return;
        }
        let per_item = compute.as_nanos() as f64 / len as f64;
        self.item_nanos = Some(match self.item_nanos {
            Some(old) => 0.8 * old + 0.2 * per_item,
            None => per_item,
        });
    }

    /// The expected compute time of a chunk of `len` items, once items have been measured.
    pub(crate) fn expected(&self, len: usize) -> Option<Duration> {
        self.item_nanos
            .map(|mu| Duration::from_nanos((mu * len as f64) as u64))
    }

    /// The size of the next chunk, given the exact number of items left if it is known.
    pub(crate) fn next_size(&mut self, remaining: Option<usize>) -> usize {
        if let Some(fixed) = self.fixed {
            return fixed;
        }
        let target = match self.item_nanos {
            Some(mu) if mu > 0.0 => {
                let for_overhead = (self.overhead_nanos / (MAX_OVERHEAD_SHARE * mu)).ceil();
                let for_duration = (MAX_CHUNK_DURATION.as_nanos() as f64 / mu).floor();
                for_overhead.min(for_duration).max(1.0) as usize
            }
            // Too fast to measure: as large as growth allows.
            Some(_) => usize::MAX,
            None => self.current,
        };
        let mut size = target.min(self.current.saturating_mul(2));
        if let Some(remaining) = remaining {
            size = size.min(remaining.div_ceil(MIN_CHUNKS_PER_WORKER * self.workers));
        }
        self.current = size.max(1);
        self.current
    }
}

#[cfg(test)]
mod test;
