//! Async consumers: a map's results and `as_completed` as a [`futures_core::Stream`].
//!
//! Polling never blocks: a pending poll registers the task's waker where the next completion
//! will wake it (the oldest chunk's future for an ordered map; the completion channel's waker
//! for an unordered map and for `as_completed`) and returns `Pending`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use crate::{AsCompleted, Error, Future, Map, MapUnordered};

/// A [`Map`], [`MapUnordered`] or [`AsCompleted`] consumed as a [`futures_core::Stream`], from
/// their `into_stream` methods, so an async program can await results without blocking a
/// runtime thread.
///
/// * It yields what the iterator would, in the same order: `Result<R, Error>` for a map,
///   `(input index, Result<R, Error>)` for an unordered map, finished [`Future`]s for
///   `as_completed` (their `result()` returns at once).
/// * A poll never waits for a chunk or a task. It does pull the next items from the input to
///   top up the window and hands them to the pool, as the iterator does, so the input
///   iterator should not block. Unlike the iterator it never runs a chunk on the polling
///   thread.
/// * Laziness, bounded memory, failures and cancellation on drop are the iterator's.
///
/// ```
/// use futures_util::StreamExt;
///
/// let pool = parexec::ThreadPool::new(2)?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let total = runtime.block_on(async {
///     let mut results = pool.map(|x: u64| x * x, 0..100).into_stream();
///     let mut total = 0;
///     while let Some(square) = results.next().await {
///         total += square?;
///     }
///     Ok::<u64, parexec::Error>(total)
/// })?;
/// assert_eq!(total, 328_350);
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct Streaming<S> {
    inner: S,
}

/// Nothing in a `Streaming` is pinned structurally: polling takes `&mut` of the inner
/// iterator, which never relies on staying at one address.
impl<S> Unpin for Streaming<S> {}

impl<S> Streaming<S> {
    pub(crate) fn new(inner: S) -> Self {
        Streaming { inner }
    }

    /// Back to the blocking iterator, with whatever it has not yielded yet.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let map = pool.map(|x: u8| x, 0..3).into_stream().into_inner();
    /// assert_eq!(map.count(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<I: Iterator, R, K> Stream for Streaming<Map<'_, I, R, K>> {
    type Item = Result<R, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_item(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I: Iterator, R, K> Stream for Streaming<MapUnordered<'_, I, R, K>> {
    type Item = (usize, Result<R, Error>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_item(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T> Stream for Streaming<AsCompleted<T>> {
    type Item = Future<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().inner.poll_future(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: fmt::Debug> fmt::Debug for Streaming<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Streaming").field(&self.inner).finish()
    }
}

impl<'p, I: Iterator, R, K> Map<'p, I, R, K> {
    /// This map as an async [`Stream`](futures_core::Stream) of the same results in the same
    /// order; see [`Streaming`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    /// let out: Vec<_> = runtime.block_on(pool.map(|x: u8| x + 1, 0..3).into_stream().collect());
    /// assert_eq!(out.into_iter().collect::<Result<Vec<_>, _>>()?, [1, 2, 3]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn into_stream(self) -> Streaming<Self> {
        Streaming::new(self)
    }
}

impl<'p, I: Iterator, R, K> MapUnordered<'p, I, R, K> {
    /// This map as an async [`Stream`](futures_core::Stream) of `(input index, result)` in
    /// completion order; see [`Streaming`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let stream = pool.map(|x: usize| x * 2, 0..10).unordered().into_stream();
    /// let mut out: Vec<(usize, usize)> = runtime.block_on(stream.map(|(i, r)| (i, r.unwrap())).collect());
    /// out.sort();
    /// assert_eq!(out[9], (9, 18));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn into_stream(self) -> Streaming<Self> {
        Streaming::new(self)
    }
}

impl<T> AsCompleted<T> {
    /// These futures as an async [`Stream`](futures_core::Stream) that yields each once it is
    /// done; see [`Streaming`].
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let futures: Vec<_> = (1..=4_u32).map(|n| pool.submit(move || n * n)).collect();
    /// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let total = runtime.block_on(async {
    ///     let mut done = parexec::as_completed(futures).into_stream();
    ///     let mut total = 0;
    ///     while let Some(future) = done.next().await {
    ///         total += future.await?;
    ///     }
    ///     Ok::<u32, parexec::Error>(total)
    /// })?;
    /// assert_eq!(total, 30);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn into_stream(self) -> Streaming<Self> {
        Streaming::new(self)
    }
}
