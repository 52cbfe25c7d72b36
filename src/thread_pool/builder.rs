//! Configuring and starting a [`ThreadPool`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use parking_lot::Mutex;

use super::ThreadPool;
use super::registry::Registry;
use super::resize::Spawner;
use crate::{Cores, Error, unwind};

/// The least per-chunk cost the automatic chunk size assumes. A hot queue costs ~2 µs per
/// chunk, but a map whose workers park between chunks also pays a wake-up (~50-100 µs here),
/// and chunks under ~100 µs were measured to lose most of the speedup on 2 cores.
const MIN_CHUNK_OVERHEAD: Duration = Duration::from_micros(10);

/// Configures a [`ThreadPool`]. Obtained from [`ThreadPool::builder`].
///
/// ```
/// use parexec::ThreadPool;
///
/// let pool = ThreadPool::builder()
///     .workers(2)
///     .thread_name("resize")
///     .stack_size(4 << 20)
///     .initializer(|worker| assert!(worker < 2))
///     .build()?;
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ThreadPoolBuilder {
    workers: Option<usize>,
    thread_name: String,
    stack_size: Option<usize>,
    initializer: Option<Arc<dyn Fn(usize) + Send + Sync>>,
    chunk_overhead: Option<Duration>,
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("workers", &self.workers)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("initializer", &self.initializer.is_some())
            .field("chunk_overhead", &self.chunk_overhead)
            .finish()
    }
}

impl ThreadPoolBuilder {
    pub(super) fn new() -> Self {
        ThreadPoolBuilder {
            workers: None,
            thread_name: "parexec".into(),
            stack_size: None,
            initializer: None,
            chunk_overhead: None,
        }
    }
}

impl ThreadPoolBuilder {
    /// The number of worker threads. Defaults to [`Cores::detect()`]`.workers()`: the cores
    /// this process may use, its affinity mask and cgroup CPU quota included, a fractional
    /// quota rounded up (see [`Cores`]).
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().workers(3).build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The prefix of the worker threads' names; worker `i` is named `"{prefix}-{i}"`.
    /// Defaults to `"parexec"`.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().workers(1).thread_name("io").build()?;
    /// let name = pool.submit(|| std::thread::current().name().map(String::from)).result()?;
    /// assert_eq!(name.as_deref(), Some("io-0"));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// The stack size of each worker thread in bytes. Defaults to the standard library's.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().workers(1).stack_size(16 << 20).build()?;
    /// // A 4 MiB frame: more than the default 2 MiB stack holds.
    /// let deep = pool.submit(|| {
    ///     let frame = [1_u8; 4 << 20];
    ///     std::hint::black_box(&frame).len()
    /// });
    /// assert_eq!(deep.result()?, 4 << 20);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// A function each worker runs once, with its index, before it takes any task.
    /// [`build`](ThreadPoolBuilder::build) waits until every worker has run it. If it panics
    /// on any worker, `build` fails with [`Error::Initializer`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// static STARTED: AtomicUsize = AtomicUsize::new(0);
    /// let pool = parexec::ThreadPool::builder()
    ///     .workers(2)
    ///     .initializer(|_worker| { STARTED.fetch_add(1, Ordering::SeqCst); })
    ///     .build()?;
    /// assert_eq!(STARTED.load(Ordering::SeqCst), 2);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn initializer(mut self, init: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(init));
        self
    }

    /// The fixed cost of dispatching one chunk of a [`map`](ThreadPool::map), which the
    /// automatic chunk size keeps at most ~10% of a chunk's time. Defaults to 10 µs, also the
    /// least accepted (smaller values are raised to it): a map whose workers park between
    /// chunks pays a thread wake-up per chunk. A measured figure, such as
    /// `parexec::planner::Calibration::get()?.threads.chunk_overhead`, may be passed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = parexec::ThreadPool::builder()
    ///     .workers(2)
    ///     .chunk_overhead(Duration::from_micros(50))
    ///     .build()?;
    /// assert_eq!(pool.map(|x: u32| x * 2, 0..100).count(), 100);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn chunk_overhead(mut self, overhead: Duration) -> Self {
        self.chunk_overhead = Some(overhead);
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers, [`Error::Io`] if a thread cannot be
    /// spawned, [`Error::Initializer`] if the initializer panics on any worker (the threads
    /// already started are joined before this returns).
    ///
    /// ```
    /// let err = parexec::ThreadPool::builder().workers(0).build().unwrap_err();
    /// assert!(matches!(err, parexec::Error::InvalidArgument(_)));
    /// ```
    pub fn build(self) -> Result<ThreadPool, Error> {
        let workers = self.workers.unwrap_or_else(|| Cores::detect().workers());
        if workers == 0 {
            return Err(Error::InvalidArgument(
                "a thread pool needs at least one worker".into(),
            ));
        }
        unwind::install_hook();
        let pool = ThreadPool {
            registry: Arc::new(Registry::new()),
            threads: Mutex::new(Vec::with_capacity(workers)),
            joining: Mutex::new(()),
            workers: AtomicUsize::new(workers),
            next_index: AtomicUsize::new(0),
            spawner: Spawner {
                thread_name: self.thread_name,
                stack_size: self.stack_size,
                initializer: self.initializer,
            },
            chunk_overhead: self
                .chunk_overhead
                .map_or(MIN_CHUNK_OVERHEAD, |o| o.max(MIN_CHUNK_OVERHEAD)),
        };
        // On failure, dropping the pool shuts down and joins the workers that did start.
        pool.start_workers(workers)?;
        Ok(pool)
    }
}
