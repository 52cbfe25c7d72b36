//! loom models of the in-place output's hand-off: the real `Map::collect_vec`, `OutputBuffer`,
//! `Slots` and `Map`'s `Drop`, with chunks run on loom threads that resolve the chunks' real
//! futures. Each value is created on the worker that computes it and read on the consumer
//! after the hand-off, through a loom cell, so loom checks that the future's resolution orders
//! the write before every read. Dropping a value reads a cell that the consumer clears once
//! `collect_vec` has returned, so loom also checks that no value written into the buffer is
//! dropped after the collection ends (as one left to a chunk still running would be). Run by
//! `.ci/loom`.

use std::sync::Arc;
use std::time::Duration;

use ::loom::cell::UnsafeCell;
use ::loom::thread;

use crate::Error;
use crate::future::promise;
use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched, Map, Slots, Unscoped};

/// Whether the consumer's `collect_vec` call is still going on.
struct Open(UnsafeCell<bool>);

// SAFETY: every access goes through the loom cell, which checks that accesses from different
// threads are ordered.
unsafe impl Sync for Open {}

impl Open {
    fn is_open(&self) -> bool {
        // SAFETY: the one write is `close`; loom checks the two are ordered.
        self.0.with(|open| unsafe { *open })
    }

    fn close(&self) {
        // SAFETY: as in `is_open`.
        self.0.with_mut(|open| unsafe { *open = false });
    }
}

/// A result whose every access loom checks against its creation.
struct Tracked {
    value: UnsafeCell<u64>,
    collection: Arc<Open>,
}

impl Tracked {
    fn get(&self) -> u64 {
        // SAFETY: nothing writes the cell after its creation; loom checks this read is
        // ordered after it.
        self.value.with(|value| unsafe { *value })
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        assert_eq!(self.get() % 10, 0);
        assert!(self.collection.is_open(), "a value outlived its collection");
    }
}

/// One loom thread per chunk. Chunks whose first item is `refused` fail at dispatch, as on a
/// pool that has shut down.
struct LoomWorkers {
    refused: Option<u64>,
    collection: Arc<Open>,
}

impl LoomWorkers {
    /// The mapped function: creates each value on the worker.
    fn make(&self) -> impl Fn(u64) -> Tracked + Send + 'static {
        let collection = Arc::clone(&self.collection);
        move |x| Tracked {
            value: UnsafeCell::new(x * 10),
            collection: Arc::clone(&collection),
        }
    }

    fn spawn(
        run: impl FnOnce() -> Chunk<Tracked> + Send + 'static,
    ) -> Dispatched<'static, Tracked> {
        let (promise, future) = promise();
        thread::spawn(move || {
            if promise.start() {
                promise.complete(Ok(run()));
            }
        });
        Dispatched {
            future,
            run_here: None,
        }
    }
}

impl ChunkDispatch<'static, u64, Tracked> for LoomWorkers {
    fn dispatch(&self, items: Vec<u64>) -> Dispatched<'static, Tracked> {
        let make = self.make();
        Self::spawn(move || Chunk::run(make, items))
    }

    fn run_inline(&self, items: Vec<u64>) -> Chunk<Tracked> {
        Chunk::run(self.make(), items)
    }

    fn workers(&self) -> usize {
        2
    }

    fn chunk_overhead(&self) -> Duration {
        Duration::ZERO
    }

    fn in_place(&self) -> Option<&dyn DispatchInto<'static, u64, Tracked>> {
        Some(self)
    }
}

impl DispatchInto<'static, u64, Tracked> for LoomWorkers {
    fn dispatch_into(
        &self,
        items: Vec<u64>,
        slots: Slots<Tracked>,
    ) -> Dispatched<'static, Tracked> {
        if items.first() == self.refused.as_ref() {
            return Dispatched::ready(Err(Error::Shutdown));
        }
        let make = self.make();
        Self::spawn(move || Chunk::run_into(make, items, slots))
    }

    fn run_inline_into(&self, items: Vec<u64>, slots: Slots<Tracked>) -> Chunk<Tracked> {
        Chunk::run_into(self.make(), items, slots)
    }
}

/// Collects `items` in chunks of one, then closes the collection.
fn collect(items: Vec<u64>, refused: Option<u64>) -> Result<Vec<u64>, Error> {
    let collection = Arc::new(Open(UnsafeCell::new(true)));
    let workers = LoomWorkers {
        refused,
        collection: Arc::clone(&collection),
    };
    let outcome = Map::<_, _, Unscoped>::new(items.into_iter(), Box::new(workers))
        .chunksize(1)
        .collect_vec()
        .map(|values| values.iter().map(Tracked::get).collect());
    collection.close();
    outcome
}

#[test]
fn values_written_in_place_reach_the_consumer() {
    ::loom::model(|| {
        assert_eq!(collect(vec![0, 1], None).unwrap(), [0, 10]);
    });
}

#[test]
fn a_failed_collection_waits_for_the_chunks_writing_its_buffer() {
    ::loom::model(|| {
        // The first chunk fails at once; the second may be running, writing into the buffer,
        // when the map is dropped: the drop cancels it or waits for it, then drops its value.
        assert!(matches!(collect(vec![0, 1], Some(0)), Err(Error::Shutdown)));
    });
}
