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

use std::collections::VecDeque;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use crate::chunking::ChunkSizer;
use crate::in_place::{OutputBuffer, Slots, Written};
use crate::{Error, Future};

/// What a worker returns for one chunk: the successful values in input order, plus the
/// failed items by their position in the chunk. Keeping failures aside keeps the hot path a
/// plain `Vec<R>`, a fraction of the memory traffic of one `Result<R, Error>` per item.
pub(crate) struct Chunk<R> {
    values: Vec<R>,
    /// The values of a chunk written in place instead (see [`Map::collect_vec`]).
    written: Written<R>,
    /// `(position in chunk, error)`, by ascending position.
    failures: Vec<(usize, Error)>,
    /// Time the worker spent running the function over the whole chunk.
    compute: Duration,
}

impl<R> Chunk<R> {
    /// Runs `f` over `items`. A panic fails only its own item: the loop resumes after it.
    pub(crate) fn run<A>(f: impl Fn(A) -> R, items: Vec<A>) -> Self {
        let started = Instant::now();
        let mut values = Vec::with_capacity(items.len());
        let mut failures = Vec::new();
        let mut items = items.into_iter();
        // One `catch_unwind` per chunk (and one more per panic), not per item.
        while let Err(payload) =
            catch_unwind(AssertUnwindSafe(|| values.extend(items.by_ref().map(&f))))
        {
            failures.push((values.len() + failures.len(), Error::from_panic(payload)));
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
            .map(|payload| vec![(written.len(), Error::from_panic(payload))])
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

    /// The number of items the chunk ran.
    fn len(&self) -> usize {
        self.values.len() + self.written.len() + self.failures.len()
    }
}

/// The results of one chunk being handed out, item by item.
///
/// The hot path, a chunk without failures, is one `vec::IntoIter::next`: positions are derived
/// from what is left rather than counted per item.
struct Ready<R> {
    values: std::vec::IntoIter<R>,
    failures: std::vec::IntoIter<(usize, Error)>,
    next_failure: Option<(usize, Error)>,
    chunk_len: usize,
    /// Input index of the chunk's first item.
    first_index: usize,
}

impl<R> Ready<R> {
    fn empty() -> Self {
        Self::new(Vec::new(), Vec::new(), 0)
    }

    fn new(values: Vec<R>, failures: Vec<(usize, Error)>, first_index: usize) -> Self {
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
    fn all_failed(len: usize, error: &Error, first_index: usize) -> Self {
        Self::new(
            Vec::new(),
            (0..len).map(|p| (p, error.clone())).collect(),
            first_index,
        )
    }

    fn len(&self) -> usize {
        self.values.len() + self.failures.len() + usize::from(self.next_failure.is_some())
    }

    /// The input index of the item the next call to `next` returns.
    fn next_index(&self) -> usize {
        self.first_index + self.chunk_len - self.len()
    }

    #[inline]
    fn next(&mut self) -> Option<Result<R, Error>> {
        if let Some((failed_at, _)) = &self.next_failure {
            if *failed_at == self.chunk_len - self.len() {
                let (_, error) = std::mem::replace(&mut self.next_failure, self.failures.next())?;
                return Some(Err(error));
            }
        }
        self.values.next().map(Ok)
    }
}

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

/// The longest chunk the consumer runs itself rather than wait for a worker: about what a
/// thread wake-up costs. Longer chunks would make the consumer a third CPU-bound thread that
/// stops refilling the window.
const RUN_HERE_LIMIT: Duration = Duration::from_micros(100);

/// Default in-flight chunks per worker: enough to hide one slow chunk at the head of the
/// order, few enough to keep memory small.
pub(crate) const WINDOW_PER_WORKER: usize = 4;

struct InFlight<R> {
    seq: u64,
    first_index: usize,
    len: usize,
    /// `None` once an unordered consumer has taken it out of order.
    future: Option<Future<Chunk<R>>>,
    run_here: Option<Box<dyn FnOnce() + Send>>,
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
/// * **Collecting everything.** [`collect_vec`](Map::collect_vec) gathers the whole map into a
///   `Vec` with the workers writing in place; much faster than item-by-item `collect` when
///   items are cheap.
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
pub struct Map<'p, I: Iterator, R> {
    items: I,
    /// Set once the input ran short of a chunk: it is never polled again. (Not `Fuse`, which
    /// would hide `TrustedLen` from the chunk's `collect` and cost a check per item.)
    items_exhausted: bool,
    dispatch: Box<dyn ChunkDispatch<I::Item, R> + Send + 'p>,
    sizer: ChunkSizer,
    window: usize,
    in_flight: VecDeque<InFlight<R>>,
    active: usize,
    next_seq: u64,
    next_index: usize,
    ready: Ready<R>,
    completions: Option<(Sender<u64>, Receiver<u64>)>,
    config_error: Option<Error>,
    /// Set after a configuration error has been yielded: nothing else follows it.
    finished: bool,
    /// Set by `collect_vec`, on a map nothing was taken from: every chunk it dispatches then
    /// delivers into `output` instead of being yielded, in place if the executor can.
    collecting: bool,
    /// Declared last so it is dropped last, after `Drop` has waited for the chunks writing it.
    output: OutputBuffer<R>,
}

impl<'p, I: Iterator, R> Map<'p, I, R> {
    pub(crate) fn new(items: I, dispatch: Box<dyn ChunkDispatch<I::Item, R> + Send + 'p>) -> Self {
        let workers = dispatch.workers().max(1);
        let sizer = ChunkSizer::adaptive(workers, dispatch.chunk_overhead());
        Map {
            items,
            items_exhausted: false,
            dispatch,
            sizer,
            window: WINDOW_PER_WORKER * workers,
            in_flight: VecDeque::new(),
            active: 0,
            next_seq: 0,
            next_index: 0,
            ready: Ready::empty(),
            completions: None,
            config_error: None,
            finished: false,
            collecting: false,
            output: OutputBuffer::default(),
        }
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
    pub fn unordered(mut self) -> MapUnordered<'p, I, R> {
        let (tx, rx) = crossbeam_channel::unbounded();
        for slot in &self.in_flight {
            if let Some(future) = &slot.future {
                notify_on_done(future, &tx, slot.seq);
            }
        }
        self.completions = Some((tx, rx));
        MapUnordered { inner: self }
    }

    /// Dispatches chunks until the window is full or the input is exhausted.
    fn fill(&mut self) {
        while self.active < self.window {
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
            let Dispatched { future, run_here } = match in_place {
                Some(into) => match self.output.claim(len) {
                    Ok(slots) => into.dispatch_into(chunk, slots),
                    Err(error) => Dispatched::ready(Err(error)),
                },
                None => self.dispatch.dispatch(chunk),
            };
            if let Some((tx, _)) = &self.completions {
                notify_on_done(&future, tx, self.next_seq);
            }
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
        if self.finished {
            return false;
        }
        if let Some(error) = self.config_error.take() {
            self.ready = Ready::new(Vec::new(), vec![(0, error)], 0);
            self.finished = true;
            return true;
        }
        let Some((first_index, len, outcome)) = self.next_chunk() else {
            return false;
        };
        self.ready = match outcome {
            Ok(chunk) => Ready::new(chunk.values, chunk.failures, first_index),
            Err(error) => Ready::all_failed(len, &error, first_index),
        };
        true
    }

    /// Tops up the window, then waits for the next chunk (the oldest, or in unordered mode the
    /// first to finish) and returns its first input index, its length and its outcome; `None`
    /// when no chunk is left.
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
            Some((_, rx)) => {
                if self.active == 0 {
                    return None;
                }
                let seq = rx.recv().ok()?;
                let front_seq = self.in_flight.front().map_or(0, |s| s.seq);
                (seq - front_seq) as usize
            }
        };
        let slot = self.in_flight.get_mut(position)?;
        let (first_index, len) = (slot.first_index, slot.len);
        let future = slot.future.take().expect("each chunk is taken once");
        self.active -= 1;
        while self.in_flight.front().is_some_and(|s| s.future.is_none()) {
            self.in_flight.pop_front();
        }
        let outcome = future.result();
        if let Ok(chunk) = &outcome {
            self.sizer.observe(chunk.len(), chunk.compute);
        }
        Some((first_index, len, outcome))
    }

    /// Runs the whole map and collects its values in input order, or returns the first error
    /// in input order: what `collect::<Result<Vec<R>, Error>>()` returns, but faster.
    ///
    /// When the input's length is known exactly (its `size_hint` says so) and nothing has been
    /// taken from the map yet, the vector is allocated once at its final size. Thread-pool
    /// workers then write each chunk's results straight into it, so no thread copies them
    /// again and the vector's fresh memory is touched by all the workers instead of by the
    /// calling thread alone; results from worker processes are moved in one chunk at a time.
    /// In every other case this is `collect`.
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
    /// [`Error::InvalidArgument`] if the input's exact length is more than a vector can hold or
    /// it yields more items than that length.
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
            _ => return self.collect(),
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
        Ok(std::mem::take(&mut self.output).into_vec())
    }
}

fn notify_on_done<R>(future: &Future<Chunk<R>>, completions: &Sender<u64>, seq: u64) {
    let completions = completions.clone();
    future.on_done(move || {
        // The receiver is gone only when the map was dropped; nobody is waiting then.
        let _ = completions.send(seq);
    });
}

impl<I: Iterator, R> Iterator for Map<'_, I, R> {
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

impl<I: Iterator, R> Drop for Map<'_, I, R> {
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

impl<I: Iterator, R> fmt::Debug for Map<'_, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map")
            .field("window", &self.window)
            .field("in_flight", &self.active)
            .field("dispatched_items", &self.next_index)
            .field("unordered", &self.completions.is_some())
            .finish_non_exhaustive()
    }
}

/// The completion-order variant of [`Map`], from [`Map::unordered`]: yields
/// `(input index, Result<R, Error>)` as chunks finish, so one slow item never holds back the
/// others (or a progress bar). Laziness, chunking, failure and cancellation rules are
/// [`Map`]'s.
///
/// ```
/// let pool = parexec::ThreadPool::new(2)?;
/// let mut seen = vec![false; 100];
/// for (index, result) in pool.map(|x: usize| x, 0..100).unordered() {
///     seen[index] = result? == index;
/// }
/// assert!(seen.iter().all(|&ok| ok));
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "a map does nothing unless iterated"]
pub struct MapUnordered<'p, I: Iterator, R> {
    inner: Map<'p, I, R>,
}

impl<I: Iterator, R> Iterator for MapUnordered<'_, I, R> {
    type Item = (usize, Result<R, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        let inner = &mut self.inner;
        loop {
            let index = inner.ready.next_index();
            if let Some(result) = inner.ready.next() {
                return Some((index, result));
            }
            if !inner.next_batch() {
                return None;
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I: Iterator, R> fmt::Debug for MapUnordered<'_, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapUnordered").field(&self.inner).finish()
    }
}
