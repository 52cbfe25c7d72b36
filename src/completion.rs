//! Waiting on many futures at once: [`as_completed`] and [`wait`].
//!
//! Both work on futures from any mix of executors. Each future gets a completion callback
//! that sends its index down a channel, so waiting costs one blocking `recv` per completion
//! instead of polling every future.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::progress::Progress;
use crate::{Error, Future};

/// Indexes futures and delivers them as they finish: those already done first, in the order
/// given, then the rest in completion order.
struct Completions<T> {
    futures: Vec<Option<Future<T>>>,
    already_done: VecDeque<usize>,
    finished: Receiver<usize>,
    /// Woken after each completion is sent, for a consumer polling them as a stream.
    waker: Arc<AtomicWaker>,
    remaining: usize,
}

impl<T> Completions<T> {
    fn new(futures: impl IntoIterator<Item = Future<T>>) -> Self {
        let futures: Vec<Option<Future<T>>> = futures.into_iter().map(Some).collect();
        let (tx, rx) = crossbeam_channel::unbounded();
        let waker = Arc::new(AtomicWaker::new());
        let mut already_done = VecDeque::new();
        for (index, future) in futures.iter().enumerate() {
            let future = future.as_ref().expect("all present at start");
            if future.is_done() {
                already_done.push_back(index);
            } else {
                let tx = tx.clone();
                let waker = Arc::clone(&waker);
                future.on_done(move || {
                    // Fails only once the iterator is gone, when nobody needs the signal.
                    let _ = tx.send(index);
                    waker.wake();
                });
            }
        }
        Completions {
            remaining: futures.len(),
            futures,
            already_done,
            finished: rx,
            waker,
        }
    }

    /// Like `next_before(None)`, but returns `Pending` instead of waiting, with `cx`'s waker
    /// registered for the next completion.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Future<T>>> {
        if self.remaining == 0 {
            return Poll::Ready(None);
        }
        let index = match self.already_done.pop_front() {
            Some(index) => index,
            None => match self.finished.try_recv() {
                Ok(index) => index,
                Err(_) => {
                    // Registered before looking again, so a completion between the two looks
                    // still wakes the task.
                    self.waker.register(cx.waker());
                    match self.finished.try_recv() {
                        Ok(index) => index,
                        Err(_) => return Poll::Pending,
                    }
                }
            },
        };
        self.remaining -= 1;
        Poll::Ready(self.futures[index].take())
    }

    /// The next finished future, `Ok(None)` when all have been delivered, or
    /// `Err(Error::Timeout)` if none finishes before `deadline`.
    fn next_before(&mut self, deadline: Option<Instant>) -> Result<Option<Future<T>>, Error> {
        if self.remaining == 0 {
            return Ok(None);
        }
        let index = match self.already_done.pop_front() {
            Some(index) => index,
            None => match deadline {
                None => self.finished.recv().map_err(|_| Error::Shutdown)?,
                Some(deadline) => match self.finished.recv_deadline(deadline) {
                    Ok(index) => index,
                    Err(RecvTimeoutError::Timeout) => return Err(Error::Timeout),
                    Err(RecvTimeoutError::Disconnected) => return Err(Error::Shutdown),
                },
            },
        };
        self.remaining -= 1;
        Ok(self.futures[index].take())
    }

    fn into_pending(self) -> Vec<Future<T>> {
        self.futures.into_iter().flatten().collect()
    }
}

/// Yields the given futures as they finish: those already done first, then the rest in
/// completion order. Works on futures from different pools. Once a future is yielded, the
/// iterator keeps no reference to it.
///
/// ```
/// use parexec::{ThreadPool, as_completed};
/// use std::sync::mpsc;
///
/// let pool = ThreadPool::new(2)?;
/// let (release, gate) = mpsc::channel::<()>();
/// let slow = pool.submit(move || { gate.recv().unwrap(); "slow" });
/// let fast = pool.submit(|| "fast");
/// let mut order = as_completed([slow, fast]);
/// assert_eq!(order.next().unwrap().result()?, "fast");
/// release.send(()).unwrap();
/// assert_eq!(order.next().unwrap().result()?, "slow");
/// assert!(order.next().is_none());
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn as_completed<T, I>(futures: I) -> AsCompleted<T>
where
    I: IntoIterator<Item = Future<T>>,
{
    AsCompleted {
        completions: Completions::new(futures),
        progress: Progress::default(),
    }
}

/// Like [`as_completed`], but gives up at a deadline `timeout` from now: after the futures
/// finished by then, it yields one `Err(Error::Timeout)` and ends. The futures not yet yielded
/// are returned by [`AsCompletedTimeout::into_pending`].
///
/// ```
/// use parexec::{Error, ThreadPool, as_completed_timeout};
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(1)?;
/// let (release, gate) = std::sync::mpsc::channel::<()>();
/// let stuck = pool.submit(move || gate.recv().is_ok());
/// let mut it = as_completed_timeout([stuck], Duration::from_millis(20));
/// assert!(matches!(it.next(), Some(Err(Error::Timeout))));
/// assert!(it.next().is_none());
/// let pending = it.into_pending();
/// release.send(()).unwrap();
/// assert!(pending.into_iter().next().unwrap().result()?);
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn as_completed_timeout<T, I>(futures: I, timeout: Duration) -> AsCompletedTimeout<T>
where
    I: IntoIterator<Item = Future<T>>,
{
    AsCompletedTimeout {
        completions: Completions::new(futures),
        deadline: Instant::now() + timeout,
        timed_out: false,
    }
}

/// Iterator returned by [`as_completed`]: yields each future once it is done.
///
/// ```
/// let pool = parexec::ThreadPool::new(2)?;
/// let all = parexec::as_completed((0..3).map(|i| pool.submit(move || i)));
/// assert_eq!(all.size_hint(), (3, Some(3)));
/// let mut values: Vec<i32> = all
///     .inspect(|f| assert!(f.is_done(), "yielded only once done"))
///     .map(|f| f.result())
///     .collect::<Result<_, _>>()?;
/// values.sort();
/// assert_eq!(values, [0, 1, 2], "each future exactly once");
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "iterators are lazy"]
pub struct AsCompleted<T> {
    completions: Completions<T>,
    /// Advanced as futures are yielded, which is as they finish (feature `progress`).
    progress: Progress,
}

impl<T> AsCompleted<T> {
    /// The next finished future, or `Pending` with `cx`'s waker registered.
    pub(crate) fn poll_future(&mut self, cx: &mut Context<'_>) -> Poll<Option<Future<T>>> {
        let next = ready!(self.completions.poll_next(cx));
        Poll::Ready(self.yielded(next))
    }

    /// Counts a yielded future on the progress bar, or finishes the bar at the end.
    fn yielded(&mut self, next: Option<Future<T>>) -> Option<Future<T>> {
        match next {
            Some(_) => self.progress.advance(1),
            None => self.progress.finish(),
        }
        next
    }
}

#[cfg(feature = "progress")]
impl<T> AsCompleted<T> {
    /// Shows a progress bar on stderr that counts the futures yielded so far, out of all of
    /// them; hidden when stderr is not a terminal. See
    /// [`progress_with`](AsCompleted::progress_with).
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let done = parexec::as_completed((0..10).map(|i| pool.submit(move || i))).progress();
    /// assert_eq!(done.count(), 10);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn progress(self) -> Self {
        self.progress_with(indicatif::ProgressBar::no_length())
    }

    /// Advances `bar` by one for each future yielded; futures are yielded as they finish, so
    /// the bar counts finished futures. A bar without a length gets the number of futures. The
    /// bar is finished once every future has been yielded.
    ///
    /// ```
    /// use indicatif::{ProgressBar, ProgressDrawTarget};
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
    /// let futures: Vec<_> = (0..10).map(|i| pool.submit(move || i)).collect();
    /// let mut done = parexec::as_completed(futures).progress_with(bar.clone());
    /// done.next();
    /// assert_eq!((bar.position(), bar.length()), (1, Some(10)));
    /// assert_eq!(done.count(), 9);
    /// assert!(bar.is_finished());
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn progress_with(mut self, bar: indicatif::ProgressBar) -> Self {
        self.progress = Progress::attach(bar, Some(self.completions.remaining));
        self
    }
}

impl<T> Iterator for AsCompleted<T> {
    type Item = Future<T>;

    fn next(&mut self) -> Option<Future<T>> {
        // Every future resolves exactly once (an abandoned one as cancelled), so the channel
        // delivers each index and the wait ends.
        let next = self.completions.next_before(None).ok().flatten();
        self.yielded(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.completions.remaining, Some(self.completions.remaining))
    }
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("remaining", &self.completions.remaining)
            .finish()
    }
}

/// Iterator returned by [`as_completed_timeout`]: yields `Ok(future)` as futures finish, then
/// one `Err(Error::Timeout)` if the deadline passes first.
///
/// ```
/// use std::time::Duration;
/// let pool = parexec::ThreadPool::new(1)?;
/// let mut it = parexec::as_completed_timeout([pool.submit(|| 1)], Duration::from_secs(30));
/// assert_eq!(it.next().unwrap()?.result()?, 1);
/// assert!(it.next().is_none());
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "iterators are lazy"]
pub struct AsCompletedTimeout<T> {
    completions: Completions<T>,
    deadline: Instant,
    timed_out: bool,
}

impl<T> AsCompletedTimeout<T> {
    /// The futures not yet yielded, in the order they were given.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let done = pool.submit(|| "done");
    /// while !done.is_done() { std::thread::yield_now() }
    /// let stuck = pool.submit(move || { gate.recv().unwrap(); "stuck" });
    /// let mut it = parexec::as_completed_timeout([stuck, done], Duration::from_millis(20));
    /// assert_eq!(it.next().unwrap()?.result()?, "done");
    /// assert!(matches!(it.next(), Some(Err(parexec::Error::Timeout))));
    /// let pending = it.into_pending();
    /// assert_eq!(pending.len(), 1, "only the future not yielded");
    /// release.send(()).unwrap();
    /// assert_eq!(pending.into_iter().next().unwrap().result()?, "stuck");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn into_pending(self) -> Vec<Future<T>> {
        self.completions.into_pending()
    }
}

impl<T> Iterator for AsCompletedTimeout<T> {
    type Item = Result<Future<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.timed_out {
            return None;
        }
        match self.completions.next_before(Some(self.deadline)) {
            Ok(next) => next.map(Ok),
            Err(error) => {
                self.timed_out = true;
                Some(Err(error))
            }
        }
    }
}

impl<T> fmt::Debug for AsCompletedTimeout<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompletedTimeout")
            .field("remaining", &self.completions.remaining)
            .field("timed_out", &self.timed_out)
            .finish()
    }
}

/// When [`wait`] returns.
///
/// ```
/// assert_ne!(parexec::ReturnWhen::FirstCompleted, parexec::ReturnWhen::AllCompleted);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnWhen {
    /// As soon as any future is done.
    FirstCompleted,
    /// As soon as any future is done with an error, or when all are done.
    FirstException,
    /// When every future is done.
    AllCompleted,
}

/// Waits until the condition `return_when` holds or `timeout` passes, and splits the futures
/// into `(done, pending)`, each in the order given. A timeout returns normally: it is not an
/// error. Works on futures from different pools.
///
/// ```
/// use parexec::{ReturnWhen, ThreadPool, wait};
/// use std::time::Duration;
///
/// let pool = ThreadPool::new(2)?;
/// let futures = vec![pool.submit(|| 1), pool.submit(|| panic!("bad")), pool.submit(|| 3)];
/// let (done, pending) = wait(futures, ReturnWhen::AllCompleted, Some(Duration::from_secs(30)));
/// assert_eq!((done.len(), pending.len()), (3, 0));
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn wait<T, I>(
    futures: I,
    return_when: ReturnWhen,
    timeout: Option<Duration>,
) -> (Vec<Future<T>>, Vec<Future<T>>)
where
    I: IntoIterator<Item = Future<T>>,
{
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut completions = Completions::new(futures);
    let total = completions.futures.len();
    let mut done = vec![false; total];
    let mut done_count = 0;
    let satisfied = |done_count: usize, failed: bool| match return_when {
        ReturnWhen::FirstCompleted => done_count > 0 || total == 0,
        ReturnWhen::FirstException => failed || done_count == total,
        ReturnWhen::AllCompleted => done_count == total,
    };
    let mut failed = false;
    while !satisfied(done_count, failed) {
        let index = match completions.already_done.pop_front() {
            Some(index) => index,
            None => {
                let received = match deadline {
                    None => completions.finished.recv().ok(),
                    Some(deadline) => completions.finished.recv_deadline(deadline).ok(),
                };
                match received {
                    Some(index) => index,
                    None => break,
                }
            }
        };
        done[index] = true;
        done_count += 1;
        failed |= completions.futures[index]
            .as_ref()
            .is_some_and(Future::is_failed);
    }
    // Report what is done now, including futures that finished after the condition held.
    let mut finished = Vec::new();
    let mut pending = Vec::new();
    for (index, future) in completions.futures.into_iter().enumerate() {
        let future = future.expect("wait never takes a future out");
        if done[index] || future.is_done() {
            finished.push(future);
        } else {
            pending.push(future);
        }
    }
    (finished, pending)
}
