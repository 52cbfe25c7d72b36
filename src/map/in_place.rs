//! In-place output for [`Map::collect_vec`]: workers write each chunk's results straight into
//! the final vector. The map's `Drop`, which this relies on, is here too.
//!
//! # Why
//!
//! Collecting an ordered map item by item makes the consuming thread move every result once
//! more and, worse, be the only thread that touches the result's fresh memory. On a 2-core VM
//! the page faults of an 80 MB vector cost about as much as the whole serial loop, so that one
//! thread, not the workers, sets the pace. Writing in place spreads both costs over the workers,
//! as rayon's `collect` does.
//!
//! # Soundness
//!
//! * [`OutputBuffer`] allocates its vector once, at its final capacity. Slot pointers derive
//!   from one `as_mut_ptr` read and never from a reference to the buffer, and the vector does
//!   not reallocate while any range is claimed.
//! * [`OutputBuffer::claim`] hands out disjoint [`Slots`], in order, never past the capacity,
//!   and none after the first claim that did not fit (so runs stay in input order). A `Slots`
//!   is the only way to write its range, and [`Slots::fill`] consumes it.
//! * `fill` writes front to back and returns the initialised prefix as [`Written`], which
//!   owns those values: dropping it drops them.
//! * [`OutputBuffer::commit`] takes runs only where the vector's initialised prefix ends and
//!   then extends the vector's length over them.
//! * The buffer must outlive every write: the map's `Drop` (below) waits for each chunk that
//!   holds slots and has started (a cancelled one never writes), before its fields, the
//!   buffer among them, are dropped. `Map` declares the buffer last for the same reason. A
//!   `Slots` dropped unused holds only a raw pointer.

use std::ptr::NonNull;

use super::Map;
use crate::{Error, unwind};

/// The final vector of a `collect_vec`, filled by chunks in place.
pub(crate) struct OutputBuffer<R> {
    values: Vec<R>,
    /// `values.as_mut_ptr()`, read while no slot was claimed.
    base: *mut R,
    /// Slots handed out so far, from the start: `values.len() <= claimed <= capacity`.
    claimed: usize,
    /// Set once a claim did not fit: every later chunk comes back by value instead.
    spilled: bool,
}

// SAFETY: the buffer owns its vector, and `base` points into that vector's heap allocation,
// which does not move when the buffer does; so the buffer is a `Vec<R>` plus an index and
// moving it to another thread moves only the `R`s it owns. Writes through `base` happen only
// through `Slots`, each an exclusive handle on a disjoint range that `claim` (which takes
// `&mut self`) hands out once; the buffer itself reads its memory only in `commit`,
// `append` and `into_vec`, all on `&mut self` and only where runs have been handed back.
// Without this, `Map` and `MapUnordered` would not be `Send`.
unsafe impl<R: Send> Send for OutputBuffer<R> {}

impl<R> Default for OutputBuffer<R> {
    fn default() -> Self {
        Self::from_vec(Vec::new())
    }
}

impl<R> OutputBuffer<R> {
    /// A buffer for exactly `capacity` results, allocated now.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if that much memory cannot be had: the input claims more
    /// items than a vector can hold.
    pub(crate) fn with_capacity(capacity: usize) -> Result<Self, Error> {
        let mut values = Vec::new();
        values.try_reserve_exact(capacity).map_err(|e| {
            Error::InvalidArgument(format!(
                "cannot allocate a vector of {capacity} results: {e}"
            ))
        })?;
        Ok(Self::from_vec(values))
    }

    fn from_vec(mut values: Vec<R>) -> Self {
        OutputBuffer {
            base: values.as_mut_ptr(),
            values,
            claimed: 0,
            spilled: false,
        }
    }

    /// The next `len` slots after those already claimed, or `None` if they do not fit (the
    /// input yielded more items than the exact length its `size_hint` promised) or an earlier
    /// claim did not: that chunk and every later one must return their values instead.
    pub(crate) fn claim(&mut self, len: usize) -> Option<Slots<R>> {
        let end = self
            .claimed
            .checked_add(len)
            .filter(|&end| end <= self.values.capacity() && !self.spilled);
        let Some(end) = end else {
            self.spilled = true;
            return None;
        };
        let start = self.base.wrapping_add(self.claimed);
        self.claimed = end;
        Some(Slots { start, len })
    }

    /// Takes over the values of a run written in place. A run must start where the values
    /// taken so far end: chunks are committed in input order.
    ///
    /// # Panics
    ///
    /// If `run` does not continue the initialised prefix, which would be a bug in the map.
    pub(crate) fn commit(&mut self, run: Written<R>) {
        if run.len == 0 {
            return;
        }
        let prefix_end = self.base.wrapping_add(self.values.len());
        assert!(
            run.start == prefix_end,
            "in-place runs are committed in input order"
        );
        let len = run.len;
        // The values now belong to the vector; the run must not drop them.
        std::mem::forget(run);
        // SAFETY: `run` owned `len` initialised values starting right after the vector's
        // initialised prefix (checked above), inside the capacity (`claim` never hands out
        // slots past it), and nothing else owns them any more (the run was forgotten).
        unsafe { self.values.set_len(self.values.len() + len) };
    }

    /// Appends values that came back by value: from an executor in another process, or from
    /// the chunks after the input outgrew its promised length.
    ///
    /// # Panics
    ///
    /// If slots are outstanding, which would be a bug in the map: chunks return values only
    /// after every chunk that claimed slots, and the map commits chunks in input order.
    pub(crate) fn append(&mut self, values: Vec<R>) {
        if values.is_empty() {
            return;
        }
        assert_eq!(
            self.claimed,
            self.values.len(),
            "no slots are outstanding when values are appended"
        );
        self.values.extend(values);
        self.claimed = self.values.len();
        self.base = self.values.as_mut_ptr();
    }

    /// The vector of every value committed or appended.
    pub(crate) fn into_vec(self) -> Vec<R> {
        self.values
    }
}

/// The exclusive right to write one range of an [`OutputBuffer`], once.
pub(crate) struct Slots<R> {
    start: *mut R,
    len: usize,
}

// SAFETY: a `Slots` is an exclusive handle on uninitialised memory, like a
// `&mut [MaybeUninit<R>]`, and moving it to another thread moves the `R`s it will write.
unsafe impl<R: Send> Send for Slots<R> {}

impl<R> Slots<R> {
    /// Writes `f(item)` for each item, front to back. A panic in `f` stops the run: the values
    /// written so far come back with the panic.
    ///
    /// # Panics
    ///
    /// If `items` is not exactly as long as the range, which would be a bug in the map.
    pub(crate) fn fill<A>(
        self,
        items: Vec<A>,
        f: impl Fn(A) -> R,
    ) -> (Written<R>, Option<unwind::Panic>) {
        assert_eq!(items.len(), self.len, "a chunk fills exactly its slots");
        let mut run = Written {
            start: self.start,
            len: 0,
        };
        let outcome = unwind::catch(|| {
            for item in items {
                let value = f(item);
                // SAFETY: `run.len < self.len`, since there are exactly `self.len` items and
                // one write each, so the slot lies inside this range, which nothing else
                // writes or reads until the run is committed. It is uninitialised, so nothing
                // is overwritten without being dropped.
                unsafe { run.start.add(run.len).write(value) };
                run.len += 1;
            }
        });
        (run, outcome.err())
    }
}

/// Values written in place: `len` initialised values from `start`, owned by this run until
/// [`OutputBuffer::commit`] takes them over. Dropping the run drops them.
pub(crate) struct Written<R> {
    start: *mut R,
    len: usize,
}

// SAFETY: the run owns its values as a `Vec<R>` would; sending it sends them.
unsafe impl<R: Send> Send for Written<R> {}

impl<R> Written<R> {
    /// A run of no values, for chunks whose results came back by value.
    pub(crate) fn empty() -> Self {
        Written {
            start: NonNull::dangling().as_ptr(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl<R> Drop for Written<R> {
    fn drop(&mut self) {
        // SAFETY: the run owns `len` initialised values from `start` (or none, with a dangling
        // but aligned pointer), and no one else drops them: `commit` forgets the run it takes.
        // The buffer is still allocated, because the map waits for every started chunk before
        // freeing it, and a run never outlives its chunk's result.
        unsafe { std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.start, self.len)) }
    }
}

impl<I: Iterator, R, K> Map<'_, I, R, K> {
    /// Runs the whole map and collects its values in input order, or returns the first error
    /// in input order: what `collect::<Result<Vec<R>, Error>>()` returns, but faster.
    ///
    /// When the input's length is known exactly (its `size_hint` says so) and nothing has been
    /// taken from the map yet, the vector is allocated once at its final size. Thread-pool
    /// workers then write each chunk's results straight into it, so no thread copies them
    /// again and the vector's fresh memory is touched by all the workers instead of by the
    /// calling thread alone; results from worker processes are moved in one chunk at a time.
    /// In every other case this is `Iterator::collect`. An input that yields more items than
    /// its exact length has the rest collected by value.
    ///
    /// A panic in `f` fails the collection with that item's [`Error::Panicked`] (the earliest
    /// such item, in input order). On any error, chunks that have not started are cancelled and
    /// the values already computed are dropped. Before it returns, this waits for the chunks
    /// that are running, since they write into its vector.
    ///
    /// # Errors
    ///
    /// The first error in input order: a panic in `f`, a chunk that failed as a whole (its
    /// worker process died, say, or the pool shut down), an invalid
    /// [`chunksize`](Map::chunksize) or [`buffersize`](Map::buffersize), or
    /// [`Error::InvalidArgument`] if the input's exact length is more than a vector can hold.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let squares = pool.map(|x: u64| x * x, 0..100_000).collect_vec()?;
    /// assert_eq!(squares.len(), 100_000);
    /// assert_eq!(squares[99_999], 99_999 * 99_999);
    ///
    /// let failed = pool.map(|x: u64| 10 / x, 0..10).collect_vec();
    /// assert!(matches!(failed, Err(parexec::Error::Panicked { .. })));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn collect_vec(mut self) -> Result<Vec<R>, Error> {
        if let Some(error) = self.config_error.take() {
            return Err(error);
        }
        let untouched = self.next_seq == 0 && !self.finished;
        let exact_len = match self.items.size_hint() {
            (low, Some(high)) if low == high && untouched => low,
            _ => return Iterator::collect(self),
        };
        self.output = OutputBuffer::with_capacity(exact_len)?;
        self.collecting = true;
        while let Some((_, _, outcome)) = self.next_chunk() {
            let chunk = outcome?;
            if let Some((_, error)) = chunk.failures.into_iter().next() {
                return Err(error);
            }
            self.output.commit(chunk.written);
            self.output.append(chunk.values);
        }
        self.progress.finish();
        Ok(std::mem::take(&mut self.output).into_vec())
    }
}

impl<I: Iterator, R, K> Drop for Map<'_, I, R, K> {
    fn drop(&mut self) {
        // Chunks writing into the output buffer must be done with it before the buffer is
        // freed, as scoped threads must finish before their scope ends. Only a collecting map
        // hands out slots, and then to every chunk, since it collects from the start.
        let writes_in_place = self.collecting && self.dispatch.in_place().is_some();
        for slot in &mut self.in_flight {
            let Some(future) = slot.future.take() else {
                continue;
            };
            // A chunk that has not started is cancelled and never writes; a started one is
            // waited for, and its result dropped here.
            if !future.cancel() && writes_in_place {
                drop(future.result());
            }
        }
    }
}

#[cfg(all(test, loom))]
mod loom;
#[cfg(test)]
mod test;
