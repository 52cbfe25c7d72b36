//! The crate's one error type.

use std::fmt;

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
#[derive(Debug, thiserror::Error)]
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
    /// An operating-system call failed (spawning a thread or a process, a pipe, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The feature does not exist on this platform (process pools outside Unix).
    #[error("not supported on this platform: {0}")]
    Unsupported(&'static str),
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

/// Cloning keeps every variant; an [`Error::Io`] clone keeps the error's kind and message
/// (an `io::Error` itself cannot be cloned).
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::Panicked { message, location } => Error::Panicked {
                message: message.clone(),
                location: location.clone(),
            },
            Error::Timeout => Error::Timeout,
            Error::Cancelled => Error::Cancelled,
            Error::Shutdown => Error::Shutdown,
            Error::ResultTaken => Error::ResultTaken,
            Error::WorkerDied { pid, exit } => Error::WorkerDied {
                pid: *pid,
                exit: *exit,
            },
            Error::Serialization(m) => Error::Serialization(m.clone()),
            Error::Protocol(m) => Error::Protocol(m.clone()),
            Error::Handshake(m) => Error::Handshake(m.clone()),
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::Initializer(m) => Error::Initializer(m.clone()),
            Error::Io(e) => Error::Io(std::io::Error::new(e.kind(), e.to_string())),
            Error::Unsupported(what) => Error::Unsupported(what),
        }
    }
}

impl Error {
    /// Builds [`Error::Panicked`] from a caught panic payload and the location that the
    /// crate's panic hook captured on the panicking thread.
    pub(crate) fn from_panic(payload: Box<dyn std::any::Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Error::Panicked {
            message,
            location: crate::panic_location::take(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_payloads_become_messages() {
        let from_str = Error::from_panic(Box::new("static message"));
        let from_string = Error::from_panic(Box::new(String::from("owned message")));
        let from_other = Error::from_panic(Box::new(42_u8));
        assert!(
            matches!(from_str, Error::Panicked { ref message, .. } if message == "static message")
        );
        assert!(
            matches!(from_string, Error::Panicked { ref message, .. } if message == "owned message")
        );
        assert!(
            matches!(from_other, Error::Panicked { ref message, .. } if message.contains("non-string"))
        );
    }

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
}
