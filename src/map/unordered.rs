//! `unordered`: the completion-order variant of a map, and how it learns which chunk finished.

use std::fmt;
use std::sync::Arc;

use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, Sender};

use super::{Chunk, Map, Unscoped};
use crate::{Error, Future};

/// How an unordered map learns which chunk finished: each chunk's done-callback sends its
/// sequence number, then wakes the task polling the map as a stream, if any.
pub(super) struct Completions {
    notify: Sender<u64>,
    pub(super) finished: Receiver<u64>,
    pub(super) waker: Arc<AtomicWaker>,
}

impl Completions {
    pub(super) fn new() -> Self {
        let (notify, finished) = crossbeam_channel::unbounded();
        Completions {
            notify,
            finished,
            waker: Arc::default(),
        }
    }

    pub(super) fn notify_on_done<R>(&self, future: &Future<Chunk<R>>, seq: u64) {
        let notify = self.notify.clone();
        let waker = Arc::clone(&self.waker);
        future.on_done(move || {
            // The receiver is gone only when the map was dropped; nobody is waiting then.
            let _ = notify.send(seq);
            waker.wake();
        });
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
pub struct MapUnordered<'p, I: Iterator, R, K = Unscoped> {
    pub(super) inner: Map<'p, I, R, K>,
}

impl<I: Iterator, R, K> Iterator for MapUnordered<'_, I, R, K> {
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

impl<I: Iterator, R, K> fmt::Debug for MapUnordered<'_, I, R, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("MapUnordered").field(&self.inner).finish()
    }
}
