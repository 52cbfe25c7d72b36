//! A chunk's results: what a worker returns for one chunk, and how the consumer hands them
//! out item by item.

use std::time::{Duration, Instant};

use super::in_place::{Slots, Written};
use crate::{Error, unwind};

/// What a worker returns for one chunk: the successful values in input order, plus the
/// failed items by their position in the chunk. Keeping failures aside keeps the hot path a
/// plain `Vec<R>`, a fraction of the memory traffic of one `Result<R, Error>` per item.
pub(crate) struct Chunk<R> {
    pub(super) values: Vec<R>,
    /// The values of a chunk written in place instead (see [`Map::collect_vec`]).
    pub(super) written: Written<R>,
    /// `(position in chunk, error)`, by ascending position.
    pub(super) failures: Vec<(usize, Error)>,
    /// Time the worker spent running the function over the whole chunk.
    pub(super) compute: Duration,
}

impl<R> Chunk<R> {
    /// Runs `f` over `items`. A panic fails only its own item: the loop resumes after it.
    pub(crate) fn run<A>(f: impl Fn(A) -> R, items: Vec<A>) -> Self {
        let started = Instant::now();
        let mut values = Vec::with_capacity(items.len());
        let mut failures = Vec::new();
        let mut items = items.into_iter();
        // One `catch_unwind` per chunk (and one more per panic), not per item.
        while let Err(panic) = unwind::catch(|| values.extend(items.by_ref().map(&f))) {
            failures.push((values.len() + failures.len(), Error::from(panic)));
        }
        Chunk {
            values,
            written: Written::empty(),
            failures,
            compute: started.elapsed(),
        }
    }

    /// Runs `f` over `items`, writing the values into `slots`. Unlike [`Chunk::run`] it stops
    /// at the first panic: the whole collection fails then, so the items after it need not run.
    pub(crate) fn run_into<A>(f: impl Fn(A) -> R, items: Vec<A>, slots: Slots<R>) -> Self {
        let started = Instant::now();
        let (written, panic) = slots.fill(items, f);
        let failures = panic
            .map(|panic| vec![(written.len(), Error::from(panic))])
            .unwrap_or_default();
        Chunk {
            values: Vec::new(),
            written,
            failures,
            compute: started.elapsed(),
        }
    }

    /// A chunk from per-item outcomes computed elsewhere (a worker process).
    pub(crate) fn from_results(
        results: impl IntoIterator<Item = Result<R, Error>>,
        compute: Duration,
    ) -> Self {
        let mut values = Vec::new();
        let mut failures = Vec::new();
        for (position, result) in results.into_iter().enumerate() {
            match result {
                Ok(value) => values.push(value),
                Err(error) => failures.push((position, error)),
            }
        }
        Chunk {
            values,
            written: Written::empty(),
            failures,
            compute,
        }
    }

    /// A chunk from its values in order and its failed items aside, by ascending position.
    pub(crate) fn from_parts(
        values: Vec<R>,
        failures: Vec<(usize, Error)>,
        compute: Duration,
    ) -> Self {
        Chunk {
            values,
            written: Written::empty(),
            failures,
            compute,
        }
    }

    /// The number of items the chunk ran.
    pub(super) fn len(&self) -> usize {
        self.values.len() + self.written.len() + self.failures.len()
    }
}

/// The results of one chunk being handed out, item by item.
///
/// The hot path, a chunk without failures, is one `vec::IntoIter::next`: positions are derived
/// from what is left rather than counted per item.
pub(super) struct Ready<R> {
    values: std::vec::IntoIter<R>,
    failures: std::vec::IntoIter<(usize, Error)>,
    next_failure: Option<(usize, Error)>,
    chunk_len: usize,
    /// Input index of the chunk's first item.
    first_index: usize,
}

impl<R> Ready<R> {
    pub(super) fn empty() -> Self {
        Self::new(Vec::new(), Vec::new(), 0)
    }

    pub(super) fn new(values: Vec<R>, failures: Vec<(usize, Error)>, first_index: usize) -> Self {
        let chunk_len = values.len() + failures.len();
        let mut failures = failures.into_iter();
        Ready {
            values: values.into_iter(),
            next_failure: failures.next(),
            failures,
            chunk_len,
            first_index,
        }
    }

    /// Every item of a chunk that failed as a whole gets the chunk's error.
    pub(super) fn all_failed(len: usize, error: &Error, first_index: usize) -> Self {
        Self::new(
            Vec::new(),
            (0..len).map(|p| (p, error.clone())).collect(),
            first_index,
        )
    }

    pub(super) fn len(&self) -> usize {
        self.values.len() + self.failures.len() + usize::from(self.next_failure.is_some())
    }

    /// The input index of the item the next call to `next` returns.
    pub(super) fn next_index(&self) -> usize {
        self.first_index + self.chunk_len - self.len()
    }

    #[inline]
    pub(super) fn next(&mut self) -> Option<Result<R, Error>> {
        if let Some((failed_at, _)) = &self.next_failure {
            if *failed_at == self.chunk_len - self.len() {
                let (_, error) = std::mem::replace(&mut self.next_failure, self.failures.next())?;
                return Some(Err(error));
            }
        }
        self.values.next().map(Ok)
    }
}
