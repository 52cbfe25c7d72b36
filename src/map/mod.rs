//! `map`: a lazy, ordered (or unordered), chunked, memory-bounded parallel iterator.
//!
//! # Design
//!
//! The consuming thread drives everything: it pulls items from the input only to fill a
//! bounded window of in-flight chunks, hands each chunk to the executor through
//! [`ChunkDispatch`] (one job for threads, one frame each way for processes), and yields
//! results as chunks finish. Memory is therefore bounded by `window x chunk size` whatever the
//! input length, and an infinite input works. Dropping the iterator cancels every chunk that
//! has not started.
//!
//! Ordered mode waits for the oldest chunk; unordered mode registers a completion callback
//! per chunk that sends its sequence number down a channel, and takes whichever arrives.

mod chunk;
mod collect;
mod dispatch;
mod in_place;
#[cfg(feature = "progress")]
mod progress;
mod settings;
mod stream;
mod unordered;

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

pub(crate) use self::chunk::Chunk;
pub use self::collect::{Scoped, Unscoped};
pub(crate) use self::dispatch::{ChunkDispatch, DispatchInto, Dispatched};
pub(crate) use self::in_place::Slots;
pub use self::settings::MapSettings;
pub use self::unordered::MapUnordered;

use self::chunk::Ready;
use self::dispatch::Inline;
use self::in_place::OutputBuffer;
use self::unordered::Completions;
use crate::chunking::{ChunkSizer, WINDOW_PER_WORKER};
use crate::progress::Progress;
use crate::{Error, Future};

/// The longest chunk the consumer runs itself rather than wait for a worker: about what a
/// thread wake-up costs. Longer chunks would make the consumer a third CPU-bound thread that
/// stops refilling the window.
const RUN_HERE_LIMIT: Duration = Duration::from_micros(100);

struct InFlight<'p, R> {
    seq: u64,
    first_index: usize,
    len: usize,
    /// `None` once an unordered consumer has taken it out of order.
    future: Option<Future<Chunk<R>>>,
    run_here: Option<Box<dyn FnOnce() + Send + 'p>>,
}

/// The lazy iterator returned by `map`: yields `Result<R, Error>` for every input item, in
/// input order.
///
/// * **Lazy and bounded.** Only a window of chunks is in flight (default 4 per worker, see
///   [`buffersize`](Map::buffersize)); the input is read no faster than results are consumed,
///   so infinite inputs and inputs larger than memory work.
/// * **Chunked.** Items travel in chunks. Without [`chunksize`](Map::chunksize) the size
///   adapts to the measured cost of items: it starts at 1, grows at most 2x per chunk until the
///   per-chunk overhead is at most ~10% of a chunk's time, keeps at least 4 chunks per worker,
///   and shrinks towards the tail of an input of known length.
/// * **Failures stay local.** A panic in one item yields `Err(Error::Panicked)` for that item
///   only; a chunk that fails as a whole (its worker process died, say) yields the error for
///   each of its items.
/// * **Cancellation.** Dropping the iterator cancels every chunk that has not started.
/// * **Collecting everything.** [`collect`](Map::collect) into `Result<Vec<R>, Error>`, and
///   [`collect_vec`](Map::collect_vec), have the workers write each chunk straight into the
///   final vector; any other collection is gathered item by item, as `Iterator::collect` does.
/// * **Borrowing.** [`Scope::map`](crate::Scope::map) makes the same iterator over a function
///   and items that borrow the caller's stack, marked [`Scoped`] (`K`).
/// * **Planned.** [`with_plan`](Map::with_plan) applies a plan's chunk size, and runs a plan
///   that stays serial on the consuming thread.
/// * **Sendable.** A map is `Send` when its input and results are: another thread may
///   consume it.
///
/// ```
/// use parexec::ThreadPool;
///
/// let pool = ThreadPool::new(2)?;
/// // An endless input is fine: only a bounded window is ever in flight.
/// let first: Vec<u64> = pool
///     .map(|x: u64| x * x, 0..)
///     .chunksize(64)
///     .take(5)
///     .collect::<Result<_, _>>()?;
/// assert_eq!(first, [0, 1, 4, 9, 16]);
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "a map does nothing unless iterated"]
pub struct Map<'p, I: Iterator, R, K = Unscoped> {
    items: I,
    /// Set once the input ran short of a chunk: it is never polled again. (Not `Fuse`, which
    /// would hide `TrustedLen` from the chunk's `collect` and cost a check per item.)
    items_exhausted: bool,
    dispatch: Box<dyn ChunkDispatch<'p, I::Item, R> + Send + 'p>,
    sizer: ChunkSizer,
    window: usize,
    /// Set by a serial [`MapSettings`]: chunks run on the consuming thread, one at a time.
    serial: bool,
    in_flight: VecDeque<InFlight<'p, R>>,
    active: usize,
    next_seq: u64,
    next_index: usize,
    ready: Ready<R>,
    completions: Option<Completions>,
    config_error: Option<Error>,
    /// Set after a configuration error has been yielded: nothing else follows it.
    finished: bool,
    /// Set by `collect_vec`, on a map nothing was taken from: every chunk it dispatches then
    /// delivers into `output` instead of being yielded, in place if the executor can.
    collecting: bool,
    /// The progress bar to advance as chunks finish (feature `progress`).
    progress: Progress,
    /// Whether the results may borrow, which decides which `collect` applies.
    kind: PhantomData<K>,
    /// Declared last so it is dropped last, after `Drop` has waited for the chunks writing it.
    output: OutputBuffer<R>,
}

impl<'p, I: Iterator, R, K> Map<'p, I, R, K> {
    pub(crate) fn new(
        items: I,
        dispatch: Box<dyn ChunkDispatch<'p, I::Item, R> + Send + 'p>,
    ) -> Self {
        let workers = dispatch.workers().max(1);
        let sizer = ChunkSizer::adaptive(workers, dispatch.chunk_overhead());
        Map {
            items,
            items_exhausted: false,
            dispatch,
            sizer,
            window: WINDOW_PER_WORKER * workers,
            serial: false,
            in_flight: VecDeque::new(),
            active: 0,
            next_seq: 0,
            next_index: 0,
            ready: Ready::empty(),
            completions: None,
            config_error: None,
            finished: false,
            collecting: false,
            progress: Progress::default(),
            kind: PhantomData,
            output: OutputBuffer::default(),
        }
    }

    /// A map with no pool behind it: every chunk runs on the consuming thread.
    pub(crate) fn inline<F>(items: I, f: F) -> Self
    where
        F: Fn(I::Item) -> R + Send + 'p,
    {
        let settings = MapSettings {
            serial: true,
            ..MapSettings::default()
        };
        Map::new(items, Box::new(Inline { f })).with_plan(settings)
    }

    /// Sends exactly `n` items per chunk (the last chunk may be shorter) instead of sizing
    /// chunks automatically.
    ///
    /// `n == 0` is invalid: the iterator then yields one `Err(Error::InvalidArgument)` and ends.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let total: u64 = pool.map(|x: u64| x, 1..=100).chunksize(10).sum::<Result<u64, _>>()?;
    /// assert_eq!(total, 5050);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn chunksize(mut self, n: usize) -> Self {
        if n == 0 {
            self.config_error = Some(Error::InvalidArgument(
                "chunksize must be at least 1".into(),
            ));
        } else {
            self.sizer.fixed(n);
        }
        self
    }

    /// Keeps at most `chunks` chunks in flight (Python's `buffersize`, counted in chunks).
    /// The default is 4 per worker. Memory use is bounded by `chunks x chunk size` items.
    ///
    /// `chunks == 0` is invalid: the iterator then yields one `Err(Error::InvalidArgument)`
    /// and ends.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let n = pool.map(|x: u32| x + 1, 0..1000).buffersize(2).count();
    /// assert_eq!(n, 1000);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn buffersize(mut self, chunks: usize) -> Self {
        if chunks == 0 {
            self.config_error = Some(Error::InvalidArgument(
                "buffersize must be at least 1".into(),
            ));
        } else {
            self.window = chunks;
        }
        self
    }

    /// Yields results in completion order instead of input order, each with its input index.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let mut out: Vec<(usize, u32)> = pool
    ///     .map(|x: u32| x * 3, [5, 6, 7])
    ///     .unordered()
    ///     .map(|(i, r)| r.map(|v| (i, v)))
    ///     .collect::<Result<_, _>>()?;
    /// out.sort();
    /// assert_eq!(out, [(0, 15), (1, 18), (2, 21)]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn unordered(mut self) -> MapUnordered<'p, I, R, K> {
        let completions = Completions::new();
        for slot in &self.in_flight {
            if let Some(future) = &slot.future {
                completions.notify_on_done(future, slot.seq);
            }
        }
        self.completions = Some(completions);
        MapUnordered { inner: self }
    }

    /// Applies `settings`: a [`Plan`](crate::Plan)'s chunk size and its decision to stay
    /// serial, or settings written by hand. A serial map runs each chunk on the consuming
    /// thread when its results are needed, never on the pool, whatever the pool's size. The
    /// last settings applied win.
    ///
    /// ```
    /// use std::time::Duration;
    /// use parexec::{Planner, ThreadPool};
    /// use parexec::planner::WorkloadProfile;
    ///
    /// let profile = WorkloadProfile::uniform(10_000, Duration::from_micros(20));
    /// let plan = Planner::new().profile(profile).plan()?;
    /// let pool = ThreadPool::new(plan.workers)?;
    /// let n = pool.map(|x: u32| x + 1, 0..10_000).with_plan(&plan).count();
    /// assert_eq!(n, 10_000);
    ///
    /// // Nanoseconds per item: the plan stays serial, and the map runs on this thread.
    /// let tiny = WorkloadProfile::uniform(10_000, Duration::from_nanos(2));
    /// let plan = Planner::new().profile(tiny).plan()?;
    /// assert!(!plan.parallel && plan.workers == 1, "{plan}");
    /// let caller = std::thread::current().id();
    /// let on_caller = pool
    ///     .map(move |_: u32| std::thread::current().id() == caller, 0..10_000)
    ///     .with_plan(&plan)
    ///     .collect_vec()?;
    /// assert!(on_caller.into_iter().all(|here| here));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn with_plan(mut self, settings: impl Into<MapSettings>) -> Self {
        let settings = settings.into();
        self.serial = settings.serial;
        match settings.chunksize {
            Some(n) => self.chunksize(n),
            None => self,
        }
    }

    /// Dispatches chunks until the window is full or the input is exhausted.
    fn fill(&mut self) {
        // A serial chunk is done at dispatch: a window wider than one would only compute
        // ahead of the consumer.
        let window = if self.serial { 1 } else { self.window };
        while self.active < window {
            if self.items_exhausted {
                return;
            }
            let remaining = match self.items.size_hint() {
                (low, Some(high)) if low == high => Some(low),
                _ => None,
            };
            let size = self.sizer.next_size(remaining);
            let chunk: Vec<I::Item> = self.items.by_ref().take(size).collect();
            self.items_exhausted = chunk.len() < size;
            if chunk.is_empty() {
                return;
            }
            let len = chunk.len();
            let in_place = self.dispatch.in_place().filter(|_| self.collecting);
            // No slots once the input outgrows the exact length it promised: the rest comes
            // back by value and is appended.
            let slots = in_place.and_then(|_| self.output.claim(len));
            let Dispatched { future, run_here } = match (in_place.zip(slots), self.serial) {
                (Some((into, slots)), true) => {
                    Dispatched::ready(Ok(into.run_inline_into(chunk, slots)))
                }
                (Some((into, slots)), false) => into.dispatch_into(chunk, slots),
                (None, true) => Dispatched::ready(Ok(self.dispatch.run_inline(chunk))),
                (None, false) => self.dispatch.dispatch(chunk),
            };
            if let Some(completions) = &self.completions {
                completions.notify_on_done(&future, self.next_seq);
            }
            self.progress.advance_when_done(&future, len);
            self.in_flight.push_back(InFlight {
                seq: self.next_seq,
                first_index: self.next_index,
                len,
                future: Some(future),
                run_here,
            });
            self.next_seq += 1;
            self.next_index += len;
            self.active += 1;
        }
    }

    /// Makes the results of the next finished chunk the ready batch (or the configuration
    /// error, once). Returns `false` when everything has been yielded. Kept out of line so
    /// `next` stays small enough to inline into the consumer's loop.
    #[inline(never)]
    fn next_batch(&mut self) -> bool {
        if let Some(more) = self.config_batch() {
            return more;
        }
        let Some((first_index, len, outcome)) = self.next_chunk() else {
            self.progress.finish();
            return false;
        };
        self.settle(first_index, len, outcome);
        true
    }

    /// What comes before any chunk: `Some(false)` once the map has finished, `Some(true)` when
    /// the configuration error is now the ready batch, `None` to go on with the chunks.
    fn config_batch(&mut self) -> Option<bool> {
        if self.finished {
            return Some(false);
        }
        let error = self.config_error.take()?;
        self.ready = Ready::new(Vec::new(), vec![(0, error)], 0);
        self.finished = true;
        Some(true)
    }

    /// Makes the outcome of the chunk of `len` items from `first_index` the ready batch.
    fn settle(&mut self, first_index: usize, len: usize, outcome: Result<Chunk<R>, Error>) {
        self.ready = match outcome {
            Ok(chunk) => Ready::new(chunk.values, chunk.failures, first_index),
            Err(error) => Ready::all_failed(len, &error, first_index),
        };
    }

    /// Tops up the window, then picks the next chunk (the oldest, or in unordered mode the
    /// first to finish), waits for it, and returns its first input index, its length and its
    /// outcome; `None` when no chunk is left.
    fn next_chunk(&mut self) -> Option<(usize, usize, Result<Chunk<R>, Error>)> {
        self.fill();
        let position = match &self.completions {
            None => {
                // The oldest chunk is needed next anyway: if it is still queued and short,
                // running it here beats sleeping until a worker has started and finished it.
                if let Some(front) = self.in_flight.front_mut() {
                    let short = self
                        .sizer
                        .expected(front.len)
                        .is_none_or(|t| t <= RUN_HERE_LIMIT);
                    if let Some(run_here) = front.run_here.take().filter(|_| short) {
                        run_here();
                    }
                }
                0
            }
            Some(completions) => {
                if self.active == 0 {
                    return None;
                }
                let seq = completions.finished.recv().ok()?;
                self.position_of(seq)
            }
        };
        let (first_index, len, future) = self.take_chunk(position)?;
        Some((first_index, len, self.observed(future.result())))
    }

    /// Feeds a finished chunk's timing to the chunk sizer.
    fn observed(&mut self, outcome: Result<Chunk<R>, Error>) -> Result<Chunk<R>, Error> {
        if let Ok(chunk) = &outcome {
            self.sizer.observe(chunk.len(), chunk.compute);
        }
        outcome
    }

    /// Where the chunk numbered `seq` sits in the window.
    fn position_of(&self, seq: u64) -> usize {
        let front_seq = self.in_flight.front().map_or(0, |s| s.seq);
        (seq - front_seq) as usize
    }

    /// Takes the chunk at `position` out of the window: its first input index, its length and
    /// its future.
    fn take_chunk(&mut self, position: usize) -> Option<(usize, usize, Future<Chunk<R>>)> {
        let slot = self.in_flight.get_mut(position)?;
        let (first_index, len) = (slot.first_index, slot.len);
        let future = slot.future.take().expect("each chunk is taken once");
        self.active -= 1;
        while self.in_flight.front().is_some_and(|s| s.future.is_none()) {
            self.in_flight.pop_front();
        }
        Some((first_index, len, future))
    }
}

impl<I: Iterator, R, K> Iterator for Map<'_, I, R, K> {
    type Item = Result<R, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(result) = self.ready.next() {
                return Some(result);
            }
            if !self.next_batch() {
                return None;
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.config_error.is_some() || self.finished {
            return (self.ready.len(), Some(self.ready.len()));
        }
        let queued: usize = self
            .in_flight
            .iter()
            .filter(|s| s.future.is_some())
            .map(|s| s.len)
            .sum();
        let (low, high) = if self.items_exhausted {
            (0, Some(0))
        } else {
            self.items.size_hint()
        };
        let known = self.ready.len() + queued;
        (
            known.saturating_add(low),
            high.and_then(|h| h.checked_add(known)),
        )
    }
}

impl<I: Iterator, R, K> fmt::Debug for Map<'_, I, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("window", &self.window)
            .field("in_flight", &self.active)
            .field("dispatched_items", &self.next_index)
            .field("unordered", &self.completions.is_some())
            .finish_non_exhaustive()
    }
}
