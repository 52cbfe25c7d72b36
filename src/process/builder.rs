//! Configuring and starting a [`ProcessPool`].

use std::ffi::OsString;
use std::time::Duration;

use super::ProcessPool;
#[cfg(unix)]
use super::{spawn, supervisor};
use crate::{Cores, Error};

/// Settings for a [`ProcessPool`]; see each method.
///
/// ```standalone_crate
/// let pool = parexec::ProcessPool::builder().workers(2).lazy().build()?;
/// assert!(pool.worker_pids().is_empty(), "lazy workers start with the first task");
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ProcessPoolBuilder {
    workers: Option<usize>,
    lazy: bool,
    task_timeout: Option<Duration>,
    max_tasks_per_worker: Option<u64>,
    initializer: Option<fn()>,
    env: Vec<(OsString, OsString)>,
    args: Vec<OsString>,
    retries: u32,
    max_frame: usize,
}

impl Default for ProcessPoolBuilder {
    fn default() -> Self {
        ProcessPoolBuilder {
            workers: None,
            lazy: false,
            task_timeout: None,
            max_tasks_per_worker: None,
            initializer: None,
            env: Vec::new(),
            args: Vec::new(),
            retries: 0,
            max_frame: ProcessPool::DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl ProcessPoolBuilder {
    /// The number of worker processes. Defaults to [`Cores::detect()`]`.workers()`, as for a
    /// [`ThreadPool`](crate::ThreadPool): a fractional cgroup quota rounds up (see [`Cores`]).
    ///
    /// ```standalone_crate
    /// assert_eq!(parexec::ProcessPool::builder().workers(2).build()?.workers(), 2);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Starts workers with the first task instead of in [`build`](Self::build). A worker that
    /// fails to start then fails the tasks instead of `build`.
    ///
    /// ```standalone_crate
    /// fn id(x: u8) -> u8 { x }
    /// let pool = parexec::ProcessPool::builder().workers(1).lazy().build()?;
    /// assert!(pool.worker_pids().is_empty());
    /// assert_eq!(pool.submit(id, 7).result()?, 7);
    /// assert_eq!(pool.worker_pids().len(), 1, "started by the first task");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn lazy(mut self) -> Self {
        self.lazy = true;
        self
    }

    /// The longest one task (a `submit`, or one `map` chunk) may run. A worker whose task
    /// overruns is killed and replaced; that task gets [`Error::Timeout`], the tasks queued
    /// behind it run on the replacement.
    ///
    /// ```standalone_crate
    /// use std::time::Duration;
    /// fn forever(_: ()) { loop { std::hint::spin_loop() } }
    /// let pool = parexec::ProcessPool::builder().workers(1).task_timeout(Duration::from_millis(100)).build()?;
    /// assert!(matches!(pool.submit(forever, ()).result(), Err(parexec::Error::Timeout)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Replaces each worker after it has run this many tasks (`map` chunks count as one), to
    /// contain leaks in task code.
    ///
    /// ```standalone_crate
    /// fn pid(_: ()) -> u32 { std::process::id() }
    /// let pool = parexec::ProcessPool::builder().workers(1).max_tasks_per_worker(2).build()?;
    /// let pids: Vec<u32> = (0..3).map(|_| pool.submit(pid, ()).result()).collect::<Result<_, _>>()?;
    /// assert_eq!(pids[0], pids[1]);
    /// assert_ne!(pids[1], pids[2], "a fresh worker after two tasks");
    /// assert_eq!(pool.stats().worker_restarts, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn max_tasks_per_worker(mut self, tasks: u64) -> Self {
        self.max_tasks_per_worker = Some(tasks);
        self
    }

    /// A function every worker runs once before serving tasks (and again in each replacement).
    ///
    /// # Errors
    ///
    /// If it panics, or overruns the [`task_timeout`](Self::task_timeout) when one is set,
    /// [`build`](Self::build) (or, for lazy pools, the tasks) fail with
    /// [`Error::Initializer`].
    ///
    /// ```standalone_crate
    /// use std::sync::OnceLock;
    /// static MODEL: OnceLock<String> = OnceLock::new();
    /// fn load_model() { MODEL.get_or_init(|| "weights".into()); }
    /// fn model(_: ()) -> Option<String> { MODEL.get().cloned() }
    /// let pool = parexec::ProcessPool::builder().workers(1).initializer(load_model).build()?;
    /// assert_eq!(pool.submit(model, ()).result()?.as_deref(), Some("weights"));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn initializer(mut self, initializer: fn()) -> Self {
        self.initializer = Some(initializer);
        self
    }

    /// Sets an environment variable in every worker (on top of the inherited environment).
    ///
    /// ```standalone_crate
    /// fn read(_: ()) -> Option<String> { std::env::var("MODE").ok() }
    /// let pool = parexec::ProcessPool::builder().workers(1).env("MODE", "fast").build()?;
    /// assert_eq!(pool.submit(read, ()).result()?.as_deref(), Some("fast"));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Command-line arguments for the worker processes (default: none). Workers serve before
    /// `main` parses anything, so they matter only to tasks and initializers that read
    /// [`std::env::args`], or where `main` has to call [`init()`](crate::init) (see there).
    ///
    /// ```standalone_crate
    /// fn args(_: ()) -> Vec<String> { std::env::args().skip(1).collect() }
    /// let pool = parexec::ProcessPool::builder()
    ///     .workers(1)
    ///     .worker_args(["--mode", "batch"])
    ///     .build()?;
    /// assert_eq!(pool.submit(args, ()).result()?, ["--mode", "batch"]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn worker_args<S: Into<OsString>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Re-runs a task whose worker died under it up to `retries` more times before failing it
    /// with [`Error::WorkerDied`] (default 0). Timeouts are never retried.
    ///
    /// ```standalone_crate
    /// use std::path::PathBuf;
    /// /// Dies the first time, as if killed by an out-of-memory killer, then succeeds.
    /// fn dies_once(marker: PathBuf) -> u32 {
    ///     if std::fs::File::create_new(&marker).is_ok() {
    ///         std::process::abort();
    ///     }
    ///     42
    /// }
    /// let marker = std::env::temp_dir().join(format!("parexec-doc-retry-{}", std::process::id()));
    /// let pool = parexec::ProcessPool::builder().workers(1).retry_worker_deaths(1).build()?;
    /// let answer = pool.submit(dies_once, marker.clone()).result();
    /// std::fs::remove_file(&marker).ok();
    /// assert_eq!(answer?, 42);
    /// assert_eq!(pool.stats().worker_restarts, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn retry_worker_deaths(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The largest message in either direction, in bytes (default
    /// [`ProcessPool::DEFAULT_MAX_FRAME_SIZE`]). Larger arguments fail at once with
    /// [`Error::InvalidArgument`]; larger results fail their task with
    /// [`Error::Serialization`].
    ///
    /// ```standalone_crate
    /// fn len(bytes: Vec<u8>) -> usize { bytes.len() }
    /// let pool = parexec::ProcessPool::builder().workers(1).max_frame_size(1 << 20).build()?;
    /// assert_eq!(pool.submit(len, vec![0; 1000]).result()?, 1000);
    /// let too_big = pool.submit(len, vec![0; 2 << 20]).result();
    /// assert!(matches!(too_big, Err(parexec::Error::InvalidArgument(_))));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Builds the pool; unless [`lazy`](Self::lazy), starts every worker and waits for its
    /// handshake (in parallel).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers, a zero `max_tasks_per_worker` or
    /// `task_timeout`, or a maximum frame size under 64 bytes or over 4 GiB; otherwise as
    /// [`ProcessPool::new`]. [`Error::Unsupported`] outside Unix.
    ///
    /// ```standalone_crate
    /// let pool = parexec::ProcessPool::builder().workers(2).build()?;
    /// assert_eq!(pool.worker_pids().len(), 2, "every worker started and shook hands");
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn build(self) -> Result<ProcessPool, Error> {
        let workers = match self.workers {
            Some(0) => {
                return Err(Error::InvalidArgument(
                    "a process pool needs at least one worker".into(),
                ));
            }
            Some(n) => n,
            None => Cores::detect().workers(),
        };
        if self.max_tasks_per_worker == Some(0) {
            return Err(Error::InvalidArgument(
                "max_tasks_per_worker must be at least 1".into(),
            ));
        }
        if self.task_timeout == Some(Duration::ZERO) {
            return Err(Error::InvalidArgument(
                "task_timeout must be positive".into(),
            ));
        }
        if !(64..=u32::MAX as usize).contains(&self.max_frame) {
            return Err(Error::InvalidArgument(format!(
                "max_frame_size must be between 64 bytes and 4 GiB, not {}",
                self.max_frame
            )));
        }
        #[cfg(unix)]
        {
            let config = supervisor::Config {
                workers,
                lazy: self.lazy,
                task_timeout: self.task_timeout,
                max_tasks_per_worker: self.max_tasks_per_worker,
                retries: self.retries,
                spawn: spawn::SpawnConfig {
                    max_frame: self.max_frame,
                    env: self.env,
                    args: self.args,
                    initializer: self.initializer,
                    initializer_timeout: self.task_timeout,
                },
            };
            supervisor::Shared::start(config).map(|shared| ProcessPool { shared })
        }
        #[cfg(not(unix))]
        {
            let _ = workers;
            Err(Error::Unsupported(
                "process pools need Unix (Linux or macOS)",
            ))
        }
    }
}
