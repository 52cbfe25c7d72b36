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
//! task: the worker then exits at once), and the main thread, which runs tasks in arrival order
//! and writes each result as soon as it is ready.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::code::{self, Trampoline};
use super::launch::{self, ENV, WorkerConfig};
use super::protocol::{self, FrameReader, FromWorker, PROTOCOL_VERSION, RemoteFailure, ToWorker};
use crate::{Error, unwind};

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
    let incoming = spawn_reader(socket, config.max_frame)?;
    let hello = FromWorker::Hello {
        version: PROTOCOL_VERSION,
        identity: launch::identity(),
        probe: code::probe_offset(),
        pid: std::process::id(),
        nonce: config.nonce,
    };
    send(&mut writer, &hello, config.max_frame, |_| Ok(()))?;
    for frame in incoming {
        let (header, payload): (ToWorker, &[u8]) = protocol::decode_header(&frame)?;
        match header {
            ToWorker::Init { initializer } => {
                // SAFETY: the parent sends this offset only after the handshake confirmed that
                // we run the same executable, and only for a `fn()` (the builder's initializer).
                let initializer: fn() = unsafe { code::resolve(initializer) };
                match unwind::catch(initializer) {
                    Ok(()) => send(&mut writer, &FromWorker::InitDone, config.max_frame, |_| {
                        Ok(())
                    })?,
                    Err(panic) => {
                        let message = Error::from(panic).to_string();
                        send(
                            &mut writer,
                            &FromWorker::InitFailed { message },
                            config.max_frame,
                            |_| Ok(()),
                        )?;
                        return Ok(());
                    }
                }
            }
            ToWorker::Task {
                id,
                trampoline,
                func,
            } => run_task(&mut writer, config.max_frame, id, trampoline, func, payload)?,
        }
    }
    Ok(())
}

fn run_task(
    writer: &mut UnixStream,
    max_frame: usize,
    id: u64,
    trampoline: i64,
    func: i64,
    payload: &[u8],
) -> Result<(), Error> {
    // SAFETY: the handshake confirmed the same executable, and the parent only sends the
    // offset of a `Trampoline` in this field.
    let trampoline: Trampoline = unsafe { code::resolve(trampoline) };
    let started = Instant::now();
    let mut results = Vec::new();
    let outcome = unwind::catch(|| trampoline(func, payload, &mut results)).unwrap_or_else(|_| {
        Err(RemoteFailure::Serialization(
            "decoding the argument panicked".into(),
        ))
    });
    let compute_ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let done = match outcome {
        Ok(()) => protocol::encode_frame(&FromWorker::Done { id, compute_ns }, max_frame, |out| {
            out.extend_from_slice(&results);
            Ok(())
        }),
        Err(failure) => {
            protocol::encode_frame(&FromWorker::Failed { id, failure }, max_frame, |_| Ok(()))
        }
    };
    let frame = match done {
        Ok(frame) => frame,
        Err(too_big) => protocol::encode_frame(
            &FromWorker::Failed {
                id,
                failure: RemoteFailure::Serialization(too_big.to_string()),
            },
            max_frame,
            |_| Ok(()),
        )?,
    };
    writer.write_all(&frame)?;
    Ok(())
}

fn send(
    writer: &mut UnixStream,
    message: &FromWorker,
    max_frame: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let frame = protocol::encode_frame(message, max_frame, payload)?;
    writer.write_all(&frame)?;
    Ok(())
}

/// Drains the socket into a queue of frame bodies. At EOF (or any error on the socket) the
/// parent has gone or given up on this worker, so the whole process exits, even mid-task.
fn spawn_reader(
    socket: UnixStream,
    max_frame: usize,
) -> Result<crossbeam_channel::IntoIter<Vec<u8>>, Error> {
    let (sender, receiver) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("parexec-worker-reader".into())
        .spawn(move || {
            let mut reader = FrameReader::new(socket, max_frame);
            while let Ok(Some(frame)) = reader.next_frame() {
                if sender.send(frame.to_vec()).is_err() {
                    break;
                }
            }
            exit_now(0)
        })?;
    Ok(receiver.into_iter())
}
