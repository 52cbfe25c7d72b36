//! Starting one worker process and shaking hands with it.
//!
//! # Design
//!
//! The child gets its end of a `UnixStream::pair()` as stdin (see the worker module for why
//! not a `pre_exec` hook) and [`ENV`] naming the parent pid, a per-spawn nonce and the maximum
//! frame size. The Linux parent-death signal that the worker requests is tied to the thread
//! that started it, so the pool starts each worker from that worker's own supervisor thread,
//! which lives as long as the worker.
//!
//! On Linux the child executes `/proc/self/exe`, the very file the parent runs even if it was
//! replaced on disk meanwhile; elsewhere `current_exe()`. Either way, before any code offset
//! is sent to it, the worker's `Hello` must show the same protocol version, the same build
//! identity (the linker's build id, or a hash of the executable's content), the same offset
//! from the anchor to a known probe function as the parent computes, its own pid and the
//! nonce of this spawn. Any difference is an [`Error::Handshake`]: a worker of another build
//! would otherwise run whatever code sits at the offsets it is sent.

use std::ffi::OsString;
use std::hash::{Hash, Hasher};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::launch::{self, ENV, WorkerConfig};
use super::protocol::{self, FrameReader, FromWorker, PROTOCOL_VERSION, ToWorker};
use super::{code, entry};
use crate::{Error, WorkerExit};

/// How long a new worker may take to say hello. It serves from a constructor before `main`,
/// so only a badly overloaded machine comes near this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// What every worker of a pool is started with.
#[derive(Debug, Clone)]
pub(crate) struct SpawnConfig {
    pub(crate) max_frame: usize,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) args: Vec<OsString>,
    pub(crate) initializer: Option<fn()>,
    /// How long the initializer may run; `None` waits for it.
    pub(crate) initializer_timeout: Option<Duration>,
}

/// A running, handshaken worker process and the reading half of its socket.
#[derive(Debug)]
pub(crate) struct Worker {
    pub(crate) pid: u32,
    child: Child,
    pub(crate) reader: FrameReader<UnixStream>,
}

impl Worker {
    /// Ends the connection (a worker exits at EOF), kills the process first if asked, and
    /// reaps it, reporting how it ended.
    pub(crate) fn reap(mut self, kill: bool) -> WorkerExit {
        if kill {
            let _ = self.child.kill();
        }
        let _ = self.reader.get_mut().shutdown(std::net::Shutdown::Both);
        self.wait_exit()
    }

    /// Waits for the process to end and says how it did.
    fn wait_exit(&mut self) -> WorkerExit {
        self.child
            .wait()
            .map(exit_of)
            .unwrap_or(WorkerExit::Unknown)
    }
}

/// How an exited child ended.
pub(crate) fn exit_of(status: ExitStatus) -> WorkerExit {
    match (status.code(), status.signal()) {
        (Some(code), _) => WorkerExit::Code(code),
        (None, Some(signal)) => WorkerExit::Signal(signal),
        (None, None) => WorkerExit::Unknown,
    }
}

fn program() -> Result<(std::path::PathBuf, Option<std::path::PathBuf>), Error> {
    let current = std::env::current_exe()?;
    if cfg!(target_os = "linux") {
        Ok(("/proc/self/exe".into(), Some(current)))
    } else {
        Ok((current, None))
    }
}

fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::hash::DefaultHasher::new();
    (
        std::process::id(),
        Instant::now(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
    )
        .hash(&mut hasher);
    std::time::SystemTime::now().hash(&mut hasher);
    hasher.finish()
}

/// Starts a worker, checks its handshake and runs the initializer, if any. Returns the worker
/// and the writing half of its socket.
///
/// # Errors
///
/// [`Error::Io`] if the process cannot start, [`Error::Handshake`] if it is not a parexec
/// worker of this build, [`Error::Initializer`] if the initializer panics.
pub(crate) fn spawn(config: &SpawnConfig) -> Result<(Worker, UnixStream), Error> {
    let (path, arg0) = program()?;
    spawn_program(config, &path, arg0.as_deref())
}

/// [`spawn`], running the executable at `path` (as `arg0`, if given) as the worker.
fn spawn_program(
    config: &SpawnConfig,
    path: &Path,
    arg0: Option<&Path>,
) -> Result<(Worker, UnixStream), Error> {
    if launch::is_stray_worker() {
        return Err(Error::Handshake(
            "this process was started as a parexec worker but did not serve; call parexec::init() first thing in main".into(),
        ));
    }
    entry::workers_can_serve()?;
    let (parent_end, child_end) = UnixStream::pair()?;
    let mut writer = parent_end.try_clone()?;
    let worker_config = WorkerConfig {
        parent: std::process::id(),
        nonce: nonce(),
        max_frame: config.max_frame,
    };
    let mut command = Command::new(path);
    if let Some(arg0) = arg0 {
        command.arg0(arg0);
    }
    command
        .args(&config.args)
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .env(ENV, worker_config.to_env());
    let child = command
        .stdin(Stdio::from(OwnedFd::from(child_end)))
        .spawn()?;
    let pid = child.id();
    let mut worker = Worker {
        pid,
        child,
        reader: FrameReader::new(parent_end, config.max_frame),
    };
    match handshake(&mut worker, &mut writer, worker_config, config) {
        Ok(()) => Ok((worker, writer)),
        Err(e) => {
            worker.reap(true);
            Err(e)
        }
    }
}

fn handshake(
    worker: &mut Worker,
    writer: &mut UnixStream,
    expected: WorkerConfig,
    config: &SpawnConfig,
) -> Result<(), Error> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    match receive_before(worker, deadline)? {
        Some(hello @ FromWorker::Hello { .. }) => check_hello(&hello, worker.pid, expected.nonce)?,
        Some(other) => return Err(Error::Handshake(format!("expected a hello, got {other:?}"))),
        None => {
            let exit = worker.wait_exit();
            return Err(Error::Handshake(format!(
                "the worker {exit} before the handshake{}",
                entry::hint()
            )));
        }
    }
    if let Some(initializer) = config.initializer {
        let frame = protocol::encode_frame(
            &ToWorker::Init {
                initializer: code::offset_of(initializer as usize),
            },
            config.max_frame,
            |_| Ok(()),
        )?;
        std::io::Write::write_all(writer, &frame)?;
        worker
            .reader
            .get_mut()
            .set_read_timeout(config.initializer_timeout)?;
        let outcome = match next_message(worker) {
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Error::Initializer(format!(
                    "the initializer did not finish within the task timeout of {:?}",
                    config.initializer_timeout.unwrap_or_default()
                )));
            }
            other => other?,
        };
        match outcome {
            Some(FromWorker::InitDone) => {}
            Some(FromWorker::InitFailed { message }) => return Err(Error::Initializer(message)),
            Some(other) => {
                return Err(Error::Protocol(format!(
                    "expected the initializer's outcome, got {other:?}"
                )));
            }
            None => {
                let exit = worker.wait_exit();
                return Err(Error::Initializer(format!(
                    "the worker {exit} while running the initializer"
                )));
            }
        }
    }
    worker.reader.get_mut().set_read_timeout(None)?;
    Ok(())
}

/// Accepts a worker's hello only if it proves the same protocol, the same build and the same
/// code layout as this process, and answers this very spawn.
fn check_hello(hello: &FromWorker, expected_pid: u32, expected_nonce: u64) -> Result<(), Error> {
    let FromWorker::Hello {
        version,
        identity,
        probe,
        pid,
        nonce,
    } = *hello
    else {
        return Err(Error::Handshake(format!("expected a hello, got {hello:?}")));
    };
    if version != PROTOCOL_VERSION {
        return Err(Error::Handshake(format!(
            "the worker speaks protocol {version}, this build speaks {PROTOCOL_VERSION}"
        )));
    }
    if identity != launch::identity() {
        return Err(Error::Handshake(
            "the worker runs a different build of the executable".into(),
        ));
    }
    if probe != code::probe_offset() {
        return Err(Error::Handshake(format!(
            "the worker finds the probe function at offset {probe}, this process at {}: the \
             executables lay out code differently",
            code::probe_offset()
        )));
    }
    if pid != expected_pid || nonce != expected_nonce {
        return Err(Error::Handshake(format!(
            "unexpected hello from process {pid}"
        )));
    }
    Ok(())
}

/// The next message, or `None` at EOF, waiting no later than `deadline`.
fn receive_before(worker: &mut Worker, deadline: Instant) -> Result<Option<FromWorker>, Error> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1));
    worker.reader.get_mut().set_read_timeout(Some(left))?;
    match next_message(worker) {
        Err(Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(Error::Handshake(format!(
                "no hello from the worker within {HANDSHAKE_TIMEOUT:?}{}",
                entry::hint()
            )))
        }
        other => other,
    }
}

fn next_message(worker: &mut Worker) -> Result<Option<FromWorker>, Error> {
    Ok(worker.reader.next_message()?.map(|(message, _)| message))
}

#[cfg(test)]
mod test;
