//! [`MpiPoolBuilder`]: the settings of an [`MpiPool`].

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::link::{self, Command, OpenRequest};
use super::session::Shared;
use super::wire::{DEFAULT_MAX_BACKOFF, Isolation};
use super::{MpiPool, launch};
use crate::{Error, ProcessPool};

/// How long the worker ranks may take to say hello and start serving.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the first pool of this process took to open: the worker ranks' proof of identity
/// and their start, part of the job's start-up.
pub(crate) static FIRST_OPEN: OnceLock<Duration> = OnceLock::new();

/// Settings for an [`MpiPool`]; see each method.
///
/// ```
/// let err = parexec::MpiPool::builder().threads_per_rank(2).build().unwrap_err();
/// assert!(err.to_string().contains("mpirun"), "{err}");
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until build() is called"]
pub struct MpiPoolBuilder {
    threads: Option<usize>,
    isolate: bool,
    task_timeout: Option<Duration>,
    keep_workers: bool,
    handshake_timeout: Duration,
    max_backoff: Duration,
    max_frame: usize,
}

impl Default for MpiPoolBuilder {
    fn default() -> Self {
        MpiPoolBuilder {
            threads: None,
            isolate: false,
            task_timeout: None,
            keep_workers: false,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_frame: ProcessPool::DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl MpiPoolBuilder {
    /// Task threads on each worker rank (default: the cores that rank may use, which follows
    /// the launcher's binding, shared out among the worker ranks of its node when they are
    /// not bound apart). One rank per core with `threads_per_rank(1)`, or one rank per node
    /// with the default.
    ///
    /// ```
    /// let builder = parexec::MpiPool::builder().threads_per_rank(1);
    /// # let _ = builder;
    /// ```
    pub fn threads_per_rank(mut self, threads: usize) -> Self {
        self.threads = Some(threads);
        self
    }

    /// Runs each rank's tasks in a local [`ProcessPool`](crate::ProcessPool) of that many
    /// worker processes, so that an abort or segfault fails only its task (with
    /// [`Error::WorkerDied`]) and the rank lives on. Costs a local round trip per task.
    ///
    /// ```
    /// let builder = parexec::MpiPool::builder().isolate();
    /// # let _ = builder;
    /// ```
    pub fn isolate(mut self) -> Self {
        self.isolate = true;
        self
    }

    /// The longest one task (a `submit`, or one `map` chunk) may run; it then fails with
    /// [`Error::Timeout`] and its worker process is replaced. Needs [`isolate`](Self::isolate):
    /// a thread cannot be stopped safely, a process can.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = parexec::MpiPool::builder().isolate().task_timeout(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Keeps the worker ranks when this pool is dropped or shut down, waiting (idle, under a
    /// twentieth of a core) for the next pool; they exit when rank 0 does. By default they
    /// exit with the pool.
    ///
    /// ```
    /// let builder = parexec::MpiPool::builder().keep_workers();
    /// # let _ = builder;
    /// ```
    pub fn keep_workers(mut self) -> Self {
        self.keep_workers = true;
        self
    }

    /// How long the worker ranks may take to prove their build and start serving (default 60
    /// s); a rank whose `main` never calls `parexec::init()` is reported after this long.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = parexec::MpiPool::builder().handshake_timeout(Duration::from_secs(5));
    /// # let _ = builder;
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The longest sleep between two polls of an idle rank (default 1 ms): shorter answers
    /// the first task after a pause sooner but costs idle ranks more CPU.
    ///
    /// ```
    /// use std::time::Duration;
    /// let builder = parexec::MpiPool::builder().max_backoff(Duration::from_micros(200));
    /// # let _ = builder;
    /// ```
    pub fn max_backoff(mut self, cap: Duration) -> Self {
        self.max_backoff = cap;
        self
    }

    /// The largest task message (a task's argument or a chunk's items), in bytes (default
    /// [`ProcessPool::DEFAULT_MAX_FRAME_SIZE`]); larger ones fail at once with [`Error::InvalidArgument`].
    ///
    /// ```
    /// let builder = parexec::MpiPool::builder().max_frame_size(1 << 20);
    /// # let _ = builder;
    /// ```
    pub fn max_frame_size(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Opens the pool on every other rank of the job: waits for each rank's proof of identity,
    /// then for each to start its task threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero threads, a zero or isolation-less `task_timeout`,
    /// or a maximum frame size under 64 bytes or over 2 GiB; otherwise as
    /// [`MpiPool::world`].
    ///
    /// ```
    /// let err = parexec::MpiPool::builder().threads_per_rank(0).build().unwrap_err();
    /// assert!(matches!(err, parexec::Error::InvalidArgument(_)));
    /// ```
    pub fn build(self) -> Result<MpiPool, Error> {
        if self.threads == Some(0) {
            return Err(Error::InvalidArgument(
                "a rank needs at least one task thread".into(),
            ));
        }
        match self.task_timeout {
            Some(Duration::ZERO) => {
                return Err(Error::InvalidArgument(
                    "task_timeout must be positive".into(),
                ));
            }
            Some(_) if !self.isolate => {
                return Err(Error::InvalidArgument(
                    "task_timeout needs isolate(): only a worker process can be stopped".into(),
                ));
            }
            _ => {}
        }
        if !(64..=i32::MAX as usize).contains(&self.max_frame) {
            return Err(Error::InvalidArgument(format!(
                "max_frame_size must be between 64 bytes and 2 GiB, not {}",
                self.max_frame
            )));
        }
        // On a worker rank whose main skipped `parexec::init()`, this is where it serves.
        launch::init();
        let world = launch::world().ok_or_else(|| {
            Error::Mpi(
                "this process was not started by mpirun or srun, so it has no worker ranks".into(),
            )
        })?;
        if world.size < 2 {
            return Err(Error::Mpi(
                "this job has a single rank, so there are no worker ranks; start it with mpirun -n 2 or more".into(),
            ));
        }
        if !world.serialized {
            return Err(Error::Mpi(
                "the MPI library does not grant MPI_THREAD_SERIALIZED, which rank 0 needs".into(),
            ));
        }
        let link = link::link()?;
        let request = OpenRequest {
            threads: self
                .threads
                .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            isolation: self.isolate.then(|| Isolation {
                task_timeout_ns: self
                    .task_timeout
                    .map(|t| t.as_nanos().min(u64::MAX as u128) as u64),
            }),
            max_backoff: self.max_backoff,
            handshake_timeout: self.handshake_timeout,
            max_frame: self.max_frame,
        };
        let began = Instant::now();
        let (reply, answer) = crossbeam_channel::bounded(1);
        link.send(Command::Open { request, reply });
        let (session, ranks) = answer
            .recv()
            .map_err(|_| Error::Mpi("the MPI thread stopped".into()))??;
        let _ = FIRST_OPEN.set(began.elapsed());
        crate::unwind::install_hook();
        Ok(MpiPool {
            shared: Shared::new(session, ranks, self.max_frame, self.keep_workers, link),
        })
    }
}
