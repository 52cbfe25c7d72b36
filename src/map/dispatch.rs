//! How an executor runs a map's chunks: the interface every executor implements.

use std::time::Duration;

use super::chunk::Chunk;
use super::in_place::Slots;
use crate::{Error, Future};

/// How an executor runs one chunk of a `map`. `'p` bounds what a dispatched chunk may borrow:
/// the pool, and for a scoped map the caller's stack.
pub(crate) trait ChunkDispatch<'p, A, R> {
    /// Runs the mapped function over `items` on some worker.
    fn dispatch(&self, items: Vec<A>) -> Dispatched<'p, R>;
    /// Runs the mapped function over `items` on the calling thread, for a map told to stay
    /// serial.
    fn run_inline(&self, items: Vec<A>) -> Chunk<R>;
    /// The number of workers, for the chunks-per-worker rule.
    fn workers(&self) -> usize;
    /// Estimated fixed cost of one dispatch, which drives the automatic chunk size.
    fn chunk_overhead(&self) -> Duration;
    /// The in-place form of `dispatch`, for executors whose workers share this process's
    /// memory; `None` for those that return values by message.
    fn in_place(&self) -> Option<&dyn DispatchInto<'p, A, R>>;
}

/// Runs one chunk of a map with its results written straight into the output's slots.
pub(crate) trait DispatchInto<'p, A, R> {
    /// Runs the mapped function over `items` on some worker, writing into `slots`, which are
    /// exactly as many as the items.
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<'p, R>;
    /// The same on the calling thread, for a map told to stay serial.
    fn run_inline_into(&self, items: Vec<A>, slots: Slots<R>) -> Chunk<R>;
}

/// A dispatched chunk: its future, and for executors in this process a way for the consumer
/// to run the chunk itself if no worker has started it yet.
pub(crate) struct Dispatched<'p, R> {
    pub(crate) future: Future<Chunk<R>>,
    /// Runs the chunk on the calling thread unless a worker claimed it first (then a no-op).
    pub(crate) run_here: Option<Box<dyn FnOnce() + Send + 'p>>,
}

impl<R> Dispatched<'_, R> {
    /// A chunk whose outcome is known at dispatch: it ran inline, or failed before it could
    /// run.
    pub(crate) fn ready(outcome: Result<Chunk<R>, Error>) -> Self {
        Dispatched {
            future: Future::ready(outcome),
            run_here: None,
        }
    }
}

/// Runs every chunk on the consuming thread: a map with no pool behind it, for a plan that
/// stays serial.
pub(crate) struct Inline<F> {
    pub(crate) f: F,
}

impl<'p, A, R, F: Fn(A) -> R> ChunkDispatch<'p, A, R> for Inline<F> {
    fn dispatch(&self, items: Vec<A>) -> Dispatched<'p, R> {
        Dispatched::ready(Ok(self.run_inline(items)))
    }

    fn run_inline(&self, items: Vec<A>) -> Chunk<R> {
        Chunk::run(&self.f, items)
    }

    fn workers(&self) -> usize {
        1
    }

    fn chunk_overhead(&self) -> Duration {
        Duration::ZERO
    }

    fn in_place(&self) -> Option<&dyn DispatchInto<'p, A, R>> {
        Some(self)
    }
}

impl<'p, A, R, F: Fn(A) -> R> DispatchInto<'p, A, R> for Inline<F> {
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<'p, R> {
        Dispatched::ready(Ok(self.run_inline_into(items, slots)))
    }

    fn run_inline_into(&self, items: Vec<A>, slots: Slots<R>) -> Chunk<R> {
        Chunk::run_into(&self.f, items, slots)
    }
}
