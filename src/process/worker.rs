//! The worker side: the loop a worker process runs instead of `main`.
//!
//! # Design
//!
//! A worker is this same executable, started by the pool with the environment variable
//! [`ENV`] and one end of a Unix socket pair as its standard input. It serves from the
//! constructor in `entry`, before `main`, or from `parexec::init()` where constructors do not
//! run. The pool hands the socket over as stdin rather than with a `pre_exec` `dup2`, because
//! a `pre_exec` hook forces `fork`, which copies the parent's page tables (milliseconds for a
//! large parent), while a stdio redirection lets the standard library use `posix_spawn`.
//! Serving then moves the socket to a private close-on-exec descriptor and puts `/dev/null` on
//! stdin, as Python's `multiprocessing` does. Stdout and stderr stay the parent's, so
//! `println!` in a task reaches the parent's stdout and can never corrupt the protocol.
//!
//! On Linux the worker asks for `SIGKILL` when its parent dies (`PR_SET_PDEATHSIG`), then
//! checks `getppid()` again, closing the race where the parent died before the request.
//!
//! Two threads serve: a reader that drains the socket into a queue (so the parent's writes
//! never wait for a running task, and so a closed socket is noticed even in the middle of a
//! task: the worker then exits at once), and the main thread, which runs tasks in arrival order.
//! The reader passes on every whole frame one read brought as one batch, so a burst of tasks
//! costs one hand-over, not one per task.
//!
//! The main thread writes each reply as soon as its task ends, one write per reply. Holding
//! replies back to send several in one write would be cheaper, but a worker that then dies
//! takes the replies of finished tasks with it: the parent could no longer tell which task
//! killed the worker, and would fail a healthy one in its place (the test
//! `a_fault_in_a_burst_of_short_tasks_fails_only_itself` shows it).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use super::code::{self, Trampoline};
use super::launch::{self, ENV, WorkerConfig};
use super::protocol::{self, FrameReader, FromWorker, PROTOCOL_VERSION, RemoteFailure, ToWorker};
use crate::{Error, unwind};

/// The size up to which the reply buffers are kept between tasks.
const KEPT_BUFFER: usize = 64 * 1024;

/// Serves as a worker if the parent pool started this process, and never returns then.
pub(crate) fn init() {
    if let Some(config) = WorkerConfig::from_env() {
        serve(config);
    }
    if std::env::var_os(ENV).is_some() && stdin_is_socket() {
        // Started as a worker, but the parent died before we could check: nobody is left to
        // serve, and running `main` as an ordinary program would be wrong.
        exit_now(0);
    }
}

fn stdin_is_socket() -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata())
        .is_ok_and(|m| m.file_type().is_socket())
}

/// Serves tasks until the parent goes away, then exits.
fn serve(config: WorkerConfig) -> ! {
    launch::serving();
    // Called from the constructor, this runs before Rust's runtime would ignore SIGPIPE in
    // `main`; do it here, so a task writing to a closed pipe gets an error, as in `main`, and
    // is not killed.
    // SAFETY: setting a signal's disposition to ignore has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    unwind::install_hook();
    let code = match take_socket(config).and_then(|socket| run(socket, config)) {
        Ok(()) => 0,
        Err(_) => 1,
    };
    exit_now(code)
}

/// Moves the protocol socket off stdin (to a close-on-exec descriptor, so processes a task
/// starts do not inherit it), puts `/dev/null` in its place, and arranges to die with the parent.
fn take_socket(config: WorkerConfig) -> Result<UnixStream, Error> {
    let socket = UnixStream::from(std::io::stdin().as_fd().try_clone_to_owned()?);
    let null = std::fs::File::open("/dev/null")?;
    // SAFETY: dup2 only rebinds descriptor 0, which `std::io::stdin` refers to by number;
    // it has no memory effects.
    if unsafe { libc::dup2(null.as_raw_fd(), 0) } == -1 {
        return Err(std::io::Error::last_os_error().into());
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_PDEATHSIG only records a signal number for this process.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } == -1 {
            return Err(std::io::Error::last_os_error().into());
        }
    }
    if std::os::unix::process::parent_id() != config.parent {
        exit_now(0);
    }
    Ok(socket)
}

/// Leaves without running destructors or `atexit` handlers of a program that never got to run.
fn exit_now(code: i32) -> ! {
    let _ = std::io::stdout().flush();
    // SAFETY: `_exit` is always safe to call; it ends the process immediately.
    unsafe { libc::_exit(code) }
}

fn run(socket: UnixStream, config: WorkerConfig) -> Result<(), Error> {
    let mut writer = socket.try_clone()?;
    let inbox = spawn_reader(socket, config.max_frame)?;
    let hello = FromWorker::Hello {
        version: PROTOCOL_VERSION,
        identity: launch::identity(),
        probe: code::probe_offset(),
        pid: std::process::id(),
        nonce: config.nonce,
    };
    let mut replies = Replies {
        writer: &mut writer,
        out: Vec::new(),
        results: Vec::new(),
        max_frame: config.max_frame,
    };
    replies.send(&hello, |_| Ok(()))?;
    loop {
        let batch = inbox.next_batch();
        // One clock reading per task: where one task ends, the next begins.
        let mut clock = Instant::now();
        for frame in protocol::frames(&batch) {
            let (header, payload): (ToWorker, &[u8]) = protocol::decode_header(frame)?;
            match header {
                ToWorker::Init { initializer } => {
                    if !run_initializer(&mut replies, initializer)? {
                        return Ok(());
                    }
                    clock = Instant::now();
                }
                ToWorker::Task {
                    id,
                    trampoline,
                    func,
                } => {
                    clock = run_task(&mut replies, id, trampoline, func, payload, clock)?;
                }
            }
        }
    }
}

/// The socket replies go to, and the buffers they are encoded in, reused from task to task.
struct Replies<'a> {
    writer: &'a mut UnixStream,
    /// One reply's frame.
    out: Vec<u8>,
    /// One task's results, as the trampoline encodes them.
    results: Vec<u8>,
    max_frame: usize,
}

impl Replies<'_> {
    /// Encodes one reply and writes it at once.
    fn send(
        &mut self,
        message: &FromWorker,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.encode(message, payload)?;
        self.write()
    }

    /// Encodes one reply, replacing the previous one.
    fn encode(
        &mut self,
        message: &FromWorker,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.out.clear();
        // Give back the memory of an exceptionally large reply.
        self.out.shrink_to(KEPT_BUFFER);
        protocol::append_frame(&mut self.out, message, self.max_frame, payload)
    }

    fn write(&mut self) -> Result<(), Error> {
        self.writer.write_all(&self.out)?;
        Ok(())
    }
}

/// Runs the per-worker initializer and reports its outcome; `false` if it panicked, and the
/// worker must stop.
fn run_initializer(replies: &mut Replies<'_>, initializer: i64) -> Result<bool, Error> {
    // SAFETY: the parent sends this offset only after the handshake confirmed that we run the
    // same executable, and only for a `fn()` (the builder's initializer).
    let initializer: fn() = unsafe { code::resolve(initializer) };
    let outcome = unwind::catch(initializer);
    let reply = match &outcome {
        Ok(()) => FromWorker::InitDone,
        Err(panic) => FromWorker::InitFailed {
            message: Error::from(panic.clone()).to_string(),
        },
    };
    replies.send(&reply, |_| Ok(()))?;
    Ok(outcome.is_ok())
}

/// Runs one task, begun at `started`, and sends its reply; returns when it ended.
fn run_task(
    replies: &mut Replies<'_>,
    id: u64,
    trampoline: i64,
    func: i64,
    payload: &[u8],
    started: Instant,
) -> Result<Instant, Error> {
    // SAFETY: the handshake confirmed the same executable, and the parent only sends the
    // offset of a `Trampoline` in this field.
    let trampoline: Trampoline = unsafe { code::resolve(trampoline) };
    let mut results = std::mem::take(&mut replies.results);
    results.clear();
    let outcome = unwind::catch(|| trampoline(func, payload, &mut results)).unwrap_or_else(|_| {
        Err(RemoteFailure::Serialization(
            "decoding the argument panicked".into(),
        ))
    });
    let ended = Instant::now();
    let compute_ns =
        u64::try_from(ended.saturating_duration_since(started).as_nanos()).unwrap_or(u64::MAX);
    let encoded = match outcome {
        Ok(()) => replies.encode(&FromWorker::Done { id, compute_ns }, |out| {
            out.extend_from_slice(&results);
            Ok(())
        }),
        Err(failure) => replies.encode(&FromWorker::Failed { id, failure }, |_| Ok(())),
    };
    // Kept for the next task, unless an exceptionally large result would pin its memory.
    if results.capacity() <= KEPT_BUFFER {
        replies.results = results;
    }
    if let Err(too_big) = encoded {
        let failure = RemoteFailure::Serialization(too_big.to_string());
        replies.encode(&FromWorker::Failed { id, failure }, |_| Ok(()))?;
    }
    replies.write()?;
    Ok(ended)
}

/// Batches of task frames on their way from the reader thread to the main thread. The main
/// thread sleeps on the condition variable when it has nothing to run, rather than spin and
/// yield as a channel would first: on a busy machine each yield is a system call taken from
/// the threads doing the work.
#[derive(Default)]
struct Inbox {
    batches: Mutex<VecDeque<Vec<u8>>>,
    arrived: Condvar,
}

impl Inbox {
    /// The next batch of frames. The reader ends the process when the parent goes, so there is
    /// always a next batch to wait for.
    fn next_batch(&self) -> Vec<u8> {
        let mut batches = self.batches.lock();
        loop {
            if let Some(batch) = batches.pop_front() {
                return batch;
            }
            self.arrived.wait(&mut batches);
        }
    }
}

/// Drains the socket into the inbox, one batch per read. At EOF (or any error on the socket)
/// the parent has gone or given up on this worker, so the whole process exits, even mid-task.
fn spawn_reader(socket: UnixStream, max_frame: usize) -> Result<Arc<Inbox>, Error> {
    let inbox = Arc::new(Inbox::default());
    let sender = Arc::clone(&inbox);
    std::thread::Builder::new()
        .name("parexec-worker-reader".into())
        .spawn(move || {
            let mut reader = FrameReader::new(socket, max_frame);
            loop {
                let mut batch = Vec::new();
                if !matches!(reader.next_frames(&mut batch), Ok(true)) {
                    break;
                }
                sender.batches.lock().push_back(batch);
                sender.arrived.notify_one();
            }
            exit_now(0)
        })?;
    Ok(inbox)
}
