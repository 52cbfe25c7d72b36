//! How an executor runs a map's chunks: the interface every executor implements.

use std::time::Duration;

use super::chunk::Chunk;
use super::in_place::Slots;
use crate::{Error, Future};

/// How an executor runs one chunk of a `map`.
pub(crate) trait ChunkDispatch<A, R> {
    /// Runs the mapped function over `items` on some worker.
    fn dispatch(&self, items: Vec<A>) -> Dispatched<R>;
    /// The number of workers, for the chunks-per-worker rule.
    fn workers(&self) -> usize;
    /// Estimated fixed cost of one dispatch, which drives the automatic chunk size.
    fn chunk_overhead(&self) -> Duration;
    /// The in-place form of `dispatch`, for executors whose workers share this process's
    /// memory; `None` for those that return values by message.
    fn in_place(&self) -> Option<&dyn DispatchInto<A, R>>;
}

/// Runs one chunk of a map with its results written straight into the output's slots.
pub(crate) trait DispatchInto<A, R> {
    /// Runs the mapped function over `items` on some worker, writing into `slots`, which are
    /// exactly as many as the items.
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<R>;
}

/// A dispatched chunk: its future, and for executors in this process a way for the consumer
/// to run the chunk itself if no worker has started it yet.
pub(crate) struct Dispatched<R> {
    pub(crate) future: Future<Chunk<R>>,
    /// Runs the chunk on the calling thread unless a worker claimed it first (then a no-op).
    pub(crate) run_here: Option<Box<dyn FnOnce() + Send>>,
}

impl<R> Dispatched<R> {
    /// A chunk whose outcome is known at dispatch: it ran inline, or failed before it could
    /// run.
    pub(crate) fn ready(outcome: Result<Chunk<R>, Error>) -> Self {
        Dispatched {
            future: Future::ready(outcome),
            run_here: None,
        }
    }
}
