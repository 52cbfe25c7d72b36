//! The crate's one error type.

use std::fmt;
use std::io;
use std::sync::Arc;

/// Everything that can go wrong in parexec, from a panicking task to a dead worker process.
///
/// Every fallible call in the crate returns this type, and every [`Future`](crate::Future)
/// resolves to `Result<T, Error>`, so one `?` handles task failures and pool failures alike.
///
/// ```
/// use parexec::{Error, ThreadPool};
///
/// let pool = ThreadPool::new(1)?;
/// let failed = pool.submit(|| -> u32 { panic!("bad input") });
/// match failed.result() {
///     Err(Error::Panicked { message, .. }) => assert_eq!(message, "bad input"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The task panicked. The worker that ran it survives and keeps serving.
    #[error("task panicked{}: {message}", location.as_deref().map(|l| format!(" at {l}")).unwrap_or_default())]
    Panicked {
        /// The panic message (the `&str` or `String` payload; other payloads are described).
        message: String,
        /// `file:line:column` of the panic. Captured by a panic hook that pools install on
        /// creation, chained to the hook in place then; `None` if a hook set later replaced it.
        location: Option<String>,
    },
    /// A deadline passed: `result_timeout`, or a per-task timeout of a process pool.
    #[error("timed out")]
    Timeout,
    /// The task was cancelled before it started.
    #[error("cancelled before it started")]
    Cancelled,
    /// The executor was shut down before it could run the task.
    #[error("the executor has been shut down")]
    Shutdown,
    /// The result was already moved out of this future by an earlier call.
    #[error("the result has already been taken from this future")]
    ResultTaken,
    /// The worker process running the task died (abort, signal, `exit`, out-of-memory kill).
    /// Only the task it held fails; the pool replaces the worker.
    #[error("worker process {pid} died: {exit}")]
    WorkerDied {
        /// The dead worker's process id.
        pid: u32,
        /// How it ended.
        exit: WorkerExit,
    },
    /// A value could not be serialized or deserialized for transfer to or from a worker.
    #[error("serialization failed: {0}")]
    Serialization(String),
    /// A worker sent something that breaks the wire protocol; the worker has been replaced.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A worker process failed the start-up handshake (for example, a different build).
    #[error("worker handshake failed: {0}")]
    Handshake(String),
    /// An argument was out of range (zero workers, a zero chunk size, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A per-worker initializer panicked, so the pool could not start.
    #[error("worker initializer failed: {0}")]
    Initializer(String),
    /// An operating-system call failed (spawning a thread or a process, a pipe, ...). Shared,
    /// so that a cloned error keeps the original as its [`source`](std::error::Error::source).
    #[error("I/O error: {0}")]
    Io(#[source] Arc<io::Error>),
    /// The feature does not exist on this platform (process pools outside Unix).
    #[error("not supported on this platform: {0}")]
    Unsupported(&'static str),
    /// An MPI job cannot serve an `MpiPool`: the process was not started by `mpirun` or
    /// `srun`, it runs as the only rank, or the worker ranks have exited or failed to start.
    #[error("MPI: {0}")]
    Mpi(String),
}

/// How a worker process ended, as reported in [`Error::WorkerDied`].
///
/// ```
/// use parexec::WorkerExit;
///
/// assert_eq!(WorkerExit::Signal(9).to_string(), "killed by signal 9");
/// assert_eq!(WorkerExit::Code(3).to_string(), "exited with code 3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerExit {
    /// The process called `exit` with this code.
    Code(i32),
    /// The process was killed by this signal number (SIGSEGV, SIGABRT, SIGKILL, ...).
    Signal(i32),
    /// The exit status could not be determined.
    Unknown,
}

impl fmt::Display for WorkerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerExit::Code(code) => write!(f, "exited with code {code}"),
            WorkerExit::Signal(signal) => write!(f, "killed by signal {signal}"),
            WorkerExit::Unknown => f.write_str("exit status unknown"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(error: io::Error) -> Self {
        Error::Io(Arc::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_location_when_known() {
        let e = Error::Panicked {
            message: "boom".into(),
            location: Some("src/x.rs:1:2".into()),
        };
        assert_eq!(e.to_string(), "task panicked at src/x.rs:1:2: boom");
        let e = Error::Panicked {
            message: "boom".into(),
            location: None,
        };
        assert_eq!(e.to_string(), "task panicked: boom");
    }

    #[test]
    fn a_clone_keeps_the_io_source() {
        use std::error::Error as _;
        let error = Error::from(io::Error::new(io::ErrorKind::NotFound, "gone"));
        let clone = error.clone();
        let source = clone.source().expect("an I/O error keeps its source");
        let io_error = source
            .downcast_ref::<Arc<io::Error>>()
            .expect("the source is the shared io::Error");
        assert_eq!(io_error.kind(), io::ErrorKind::NotFound);
    }
}
