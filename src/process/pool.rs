//! The parent side of a process pool: dispatch, pipelining and supervision.
//!
//! # Design
//!
//! Every worker process has a *supervisor* thread in the parent. It starts the process (so the
//! Linux parent-death signal is tied to a thread that lives as long as the worker), shakes
//! hands, then reads the worker's results, and replaces the process when it dies, overruns a
//! timeout, breaks the protocol or reaches `max_tasks_per_worker`.
//!
//! A task is encoded once, into a complete frame, on the submitting thread. Dispatch then
//! writes it straight to the least-loaded worker's socket, if that worker has fewer than a
//! *window* of tasks in flight; otherwise the task waits in one shared queue, from which each
//! supervisor refills its worker as results come back. The worker runs its tasks in the order
//! they were written, so:
//!
//! * the oldest task in flight is the one running: only it fails when the worker dies, and
//!   its start time (when the previous result came back) is what `task_timeout` measures;
//! * the tasks behind it never started: they go back to the front of the queue, in order, for
//!   the replacement worker (keeping their frames is what makes that possible).
//!
//! The window is `1 + 200 µs / (mean task time)`, clamped to 2..=64: enough tasks queued in the
//! worker to cover a round trip, so a worker never waits for the parent, but no more, so that
//! load stays balanced. No thread is woken per task while a worker is busy: the submitter
//! writes directly, and the worker's reader thread drains the socket in batches.
//!
//! Lock order: a worker's writer mutex, then the state mutex. Futures are resolved (and
//! their callbacks run) only with no lock held.

use std::collections::VecDeque;
use std::io::{ErrorKind, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::code;
use super::protocol::{self, FromWorker, RemoteFailure, ToWorker};
use super::spawn::{self, SpawnConfig, Worker};
use crate::future::{Promise, promise};
use crate::map::Chunk;
use crate::{Error, Future, Payload, Stats, unwind};

/// A round trip through a worker, which the in-flight window has to cover.
const ROUND_TRIP_NANOS: f64 = 200_000.0;
/// In-flight tasks per worker before the first measurement.
const INITIAL_WINDOW: usize = 8;
const MAX_WINDOW: usize = 64;
/// Per-chunk overhead assumed for `map` before one is measured.
const INITIAL_OVERHEAD_NANOS: f64 = 50_000.0;
/// Consecutive failed starts after which a worker slot gives up.
const MAX_SPAWN_FAILURES: u32 = 3;

/// The pool's settings, validated by the builder.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) workers: usize,
    pub(crate) lazy: bool,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) max_tasks_per_worker: Option<u64>,
    pub(crate) retries: u32,
    pub(crate) spawn: SpawnConfig,
}

/// Resolves one task's future from the worker's reply.
trait Job: Send {
    /// `Pending -> Running`; `false` if the future was cancelled meanwhile.
    fn start(&self) -> bool;
    /// Decodes the reply (a `Vec<Result<R, RemoteFailure>>`), tells `record` whether the task
    /// as a whole succeeded (so the stats are current before anyone sees the result), then
    /// resolves the future.
    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        compute: Duration,
        record: &mut dyn FnMut(bool),
    );
}

/// Runs serde code of the user's types, so that a `Serialize` or `Deserialize` that panics
/// fails only its own task instead of a pool thread (or the caller).
fn guarded<T>(what: &str, serde: impl FnOnce() -> postcard::Result<T>) -> Result<T, Error> {
    match unwind::catch(serde) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::Serialization(format!("could not {what}: {e}"))),
        Err(_) => Err(Error::Serialization(format!(
            "could not {what}: its serde implementation panicked"
        ))),
    }
}

fn decode_results<R: Payload>(
    payload: &[u8],
    expected: usize,
) -> Result<Vec<Result<R, RemoteFailure>>, Error> {
    let results: Vec<Result<R, RemoteFailure>> =
        guarded("decode the result", || postcard::from_bytes(payload))?;
    if results.len() == expected {
        Ok(results)
    } else {
        Err(Error::Protocol(format!(
            "expected {expected} results, got {}",
            results.len()
        )))
    }
}

/// Writes task frames to a worker. A failed write means the worker died; its supervisor then
/// re-sends or fails what was in flight, so the error needs no handling here.
fn write_frames(stream: &mut UnixStream, frames: &[Arc<Vec<u8>>]) {
    let _ = frames.iter().try_for_each(|frame| stream.write_all(frame));
}

/// A `submit`.
struct Single<R>(Promise<R>);

impl<R: Payload> Job for Single<R> {
    fn start(&self) -> bool {
        self.0.start()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        _compute: Duration,
        record: &mut dyn FnMut(bool),
    ) {
        let outcome = reply
            .and_then(|payload| decode_results::<R>(payload, 1))
            .and_then(|mut results| {
                results
                    .pop()
                    .map_or(Err(Error::Protocol("empty reply".into())), |r| {
                        r.map_err(Error::from)
                    })
            });
        record(outcome.is_ok());
        self.0.complete(outcome);
    }
}

/// A `map` chunk; `rejected` holds the positions and errors of items whose argument did not
/// serialize, which were left out of the frame.
struct Batch<R> {
    promise: Promise<Chunk<R>>,
    sent: usize,
    rejected: Vec<(usize, Error)>,
}

impl<R: Payload> Job for Batch<R> {
    fn start(&self) -> bool {
        self.promise.start()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        compute: Duration,
        record: &mut dyn FnMut(bool),
    ) {
        let Batch {
            promise,
            sent,
            rejected,
        } = *self;
        let decoded = reply.and_then(|payload| decode_results::<R>(payload, sent));
        record(decoded.is_ok());
        promise.complete(decoded.map(|results| {
            let results = results.into_iter().map(|r| r.map_err(Error::from));
            Chunk::from_results(merge(results, rejected), compute)
        }));
    }
}

/// Puts the rejected items back at their positions among the results of the sent ones.
fn merge<R>(
    sent: impl Iterator<Item = Result<R, Error>>,
    rejected: Vec<(usize, Error)>,
) -> Vec<Result<R, Error>> {
    let mut out = Vec::with_capacity(sent.size_hint().0 + rejected.len());
    let mut rejected = rejected.into_iter().peekable();
    for result in sent {
        while let Some((_, error)) = rejected.next_if(|(index, _)| *index == out.len()) {
            out.push(Err(error));
        }
        out.push(result);
    }
    out.extend(rejected.map(|(_, error)| Err(error)));
    out
}

/// A task with its encoded frame, kept until it completes so it can be re-sent.
struct Task {
    id: u64,
    frame: Arc<Vec<u8>>,
    job: Box<dyn Job>,
    started: bool,
    attempts: u32,
    submitted: Instant,
    encode: Duration,
}

#[derive(Default)]
struct Slot {
    /// `Some` while a handshaken worker serves this slot.
    pid: Option<u32>,
    /// Tasks written to the worker, oldest (running) first.
    in_flight: VecDeque<Task>,
    /// When the oldest in-flight task started (as far as the parent can tell).
    front_started: Option<Instant>,
    /// Tasks sent to the current process, for `max_tasks_per_worker`.
    dispatched: u64,
}

struct State {
    queue: VecDeque<Task>,
    slots: Vec<Slot>,
    stats: Stats,
    started: bool,
    shutdown: bool,
    /// Supervisors still running; when none is left, nothing can run the queue.
    live: usize,
    /// Why the last supervisor gave up, once none is left.
    broken: Option<String>,
    /// EWMA of compute time per task.
    task_nanos: Option<f64>,
    /// EWMA of transfer time per task (encode, both ways through the socket, decode).
    overhead_nanos: f64,
}

impl State {
    fn window(&self) -> usize {
        self.task_nanos.map_or(INITIAL_WINDOW, |nanos| {
            (1.0 + ROUND_TRIP_NANOS / nanos.max(1.0)).clamp(2.0, MAX_WINDOW as f64) as usize
        })
    }

    fn has_room(&self, slot: usize, max_tasks: Option<u64>) -> bool {
        let s = &self.slots[slot];
        s.pid.is_some()
            && s.in_flight.len() < self.window()
            && max_tasks.is_none_or(|max| s.dispatched < max)
    }

    fn least_loaded(&self, max_tasks: Option<u64>) -> Option<usize> {
        (0..self.slots.len())
            .filter(|&slot| self.has_room(slot, max_tasks))
            .min_by_key(|&slot| self.slots[slot].in_flight.len())
    }

    /// Records `task` as written to `slot`'s worker; `false` (and the task dropped, which
    /// resolves its future as cancelled) if it was cancelled before it could start.
    fn send(
        &mut self,
        slot: usize,
        mut task: Task,
        frames: &mut Vec<Arc<Vec<u8>>>,
    ) -> Option<Task> {
        if !task.started {
            if !task.job.start() {
                self.stats.cancelled += 1;
                return Some(task);
            }
            task.started = true;
        }
        let s = &mut self.slots[slot];
        if s.in_flight.is_empty() {
            s.front_started = Some(Instant::now());
        }
        s.dispatched += 1;
        frames.push(Arc::clone(&task.frame));
        s.in_flight.push_back(task);
        None
    }
}

/// Pops the oldest in-flight task if the reply is for it: a worker answers in the order tasks
/// were written, so any other id breaks the protocol.
fn pop_reply(in_flight: &mut VecDeque<Task>, id: u64) -> Option<Task> {
    if in_flight.front()?.id == id {
        in_flight.pop_front()
    } else {
        None
    }
}

/// How a worker's service ended.
enum End {
    /// EOF or a socket error: the process exited or was killed from outside.
    Exited,
    /// The running task overran `task_timeout`.
    Timeout,
    /// The worker sent something unreadable.
    Protocol(String),
    /// The worker ran its `max_tasks_per_worker`, or the pool is shutting down.
    Retired,
}

/// Everything the pool's handle and its supervisors share.
pub(crate) struct Shared {
    config: Config,
    state: Mutex<State>,
    /// Wakes lazy supervisors at the first task or at shutdown.
    wake: Condvar,
    /// The writing half of each worker's socket, `None` while there is no worker.
    writers: Vec<Mutex<Option<UnixStream>>>,
    next_id: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Starts the supervisors; for an eager pool, waits until every worker has shaken hands.
    pub(crate) fn start(config: Config) -> Result<Arc<Self>, Error> {
        unwind::install_hook();
        let workers = config.workers;
        let lazy = config.lazy;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                slots: (0..workers).map(|_| Slot::default()).collect(),
                stats: Stats::default(),
                started: !lazy,
                shutdown: false,
                live: workers,
                broken: None,
                task_nanos: None,
                overhead_nanos: INITIAL_OVERHEAD_NANOS,
            }),
            wake: Condvar::new(),
            writers: (0..workers).map(|_| Mutex::new(None)).collect(),
            next_id: AtomicU64::new(0),
            threads: Mutex::new(Vec::with_capacity(workers)),
            config,
        });
        let (report, reports) = crossbeam_channel::bounded(workers);
        for slot in 0..workers {
            let supervisor = Arc::clone(&shared);
            let report = (!lazy).then(|| report.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("parexec-process-{slot}"))
                .spawn(move || supervisor.supervise(slot, report));
            match spawned {
                Ok(handle) => shared.threads.lock().push(handle),
                Err(e) => {
                    shared.state.lock().live -= workers - slot;
                    shared.shutdown();
                    return Err(Error::from(e));
                }
            }
        }
        drop(report);
        if !lazy {
            for outcome in reports.iter().take(workers) {
                if let Err(e) = outcome {
                    shared.shutdown();
                    return Err(e);
                }
            }
        }
        Ok(shared)
    }

    pub(crate) fn workers(&self) -> usize {
        self.config.workers
    }

    pub(crate) fn worker_pids(&self) -> Vec<u32> {
        self.state
            .lock()
            .slots
            .iter()
            .filter_map(|s| s.pid)
            .collect()
    }

    pub(crate) fn stats(&self) -> Stats {
        self.state.lock().stats
    }

    pub(crate) fn chunk_overhead(&self) -> Duration {
        Duration::from_nanos(self.state.lock().overhead_nanos as u64)
    }

    pub(crate) fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        let began = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.task_frame::<A, R>(id, f, |out| {
            guarded("encode the argument", || {
                postcard::to_io(std::slice::from_ref(&arg), out).map(drop)
            })
        });
        match frame {
            Ok(frame) => {
                let (promise, future) = promise();
                self.dispatch(Task {
                    id,
                    frame: Arc::new(frame),
                    job: Box::new(Single(promise)),
                    started: false,
                    attempts: 0,
                    submitted: began,
                    encode: began.elapsed(),
                });
                future
            }
            Err(e) => {
                let mut state = self.state.lock();
                state.stats.submitted += 1;
                state.stats.failed += 1;
                drop(state);
                Future::ready(Err(e))
            }
        }
    }

    pub(crate) fn dispatch_chunk<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        items: Vec<A>,
    ) -> Future<Chunk<R>> {
        let began = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut rejected = Vec::new();
        let mut sent = items.len();
        let whole = self.task_frame::<A, R>(id, f, |out| {
            guarded("encode the argument", || {
                postcard::to_io(&items, out).map(drop)
            })
        });
        // Only when some item does not serialize: encode item by item and leave it out.
        let frame = whole.or_else(|_| {
            let mut encoded = Vec::new();
            for (index, item) in items.iter().enumerate() {
                match guarded("encode the argument", || postcard::to_stdvec(item)) {
                    Ok(bytes) => encoded.push(bytes),
                    Err(e) => rejected.push((index, e)),
                }
            }
            sent = encoded.len();
            self.task_frame::<A, R>(id, f, |out| {
                guarded("encode the chunk length", || {
                    postcard::to_io(&sent, &mut *out)
                })?;
                encoded
                    .iter()
                    .for_each(|bytes| out.extend_from_slice(bytes));
                Ok(())
            })
        });
        let frame = match frame {
            Ok(frame) if sent > 0 => frame,
            other => {
                let mut state = self.state.lock();
                state.stats.submitted += 1;
                let outcome = match other {
                    Ok(_) => {
                        state.stats.completed += 1;
                        let results = merge(std::iter::empty::<Result<R, Error>>(), rejected);
                        Ok(Chunk::from_results(results, Duration::ZERO))
                    }
                    Err(e) => {
                        state.stats.failed += 1;
                        Err(e)
                    }
                };
                return Future::ready(outcome);
            }
        };
        let (promise, future) = promise();
        self.dispatch(Task {
            id,
            frame: Arc::new(frame),
            job: Box::new(Batch {
                promise,
                sent,
                rejected,
            }),
            started: false,
            attempts: 0,
            submitted: began,
            encode: began.elapsed(),
        });
        future
    }

    fn task_frame<A: Payload, R: Payload>(
        &self,
        id: u64,
        f: fn(A) -> R,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<Vec<u8>, Error> {
        let header = ToWorker::Task {
            id,
            trampoline: code::trampoline_offset::<A, R>(),
            func: code::offset_of(f as usize),
        };
        protocol::encode_frame(&header, self.config.spawn.max_frame, payload)
    }

    /// Writes the task to the least-loaded worker with room, or queues it.
    fn dispatch(&self, task: Task) {
        let max_tasks = self.config.max_tasks_per_worker;
        let mut counted = false;
        loop {
            let mut state = self.state.lock();
            if !counted {
                state.stats.submitted += 1;
                counted = true;
            }
            let refusal = if state.shutdown {
                Some(Error::Shutdown)
            } else {
                state
                    .broken
                    .as_ref()
                    .map(|why| Error::Handshake(why.clone()))
            };
            if let Some(error) = refusal {
                state.stats.failed += 1;
                drop(state);
                task.job.finish(Err(error), Duration::ZERO, &mut drop);
                return;
            }
            if !state.started {
                state.started = true;
                self.wake.notify_all();
            }
            let Some(slot) = state.least_loaded(max_tasks) else {
                state.queue.push_back(task);
                return;
            };
            drop(state);
            let mut writer = self.writers[slot].lock();
            let mut state = self.state.lock();
            // The worker may have died or filled up meanwhile: choose again.
            if writer.is_none() || !state.has_room(slot, max_tasks) {
                continue;
            }
            let mut frames = Vec::with_capacity(1);
            let cancelled = state.send(slot, task, &mut frames);
            drop(state);
            if let Some(stream) = writer.as_mut() {
                write_frames(stream, &frames);
            }
            drop(writer);
            drop(cancelled);
            return;
        }
    }

    /// Moves queued tasks to `slot`'s worker until its window is full.
    fn refill(&self, slot: usize) {
        let mut writer = self.writers[slot].lock();
        let Some(stream) = writer.as_mut() else {
            return;
        };
        let mut frames = Vec::new();
        let mut cancelled = Vec::new();
        {
            let mut state = self.state.lock();
            while state.has_room(slot, self.config.max_tasks_per_worker) {
                let Some(task) = state.queue.pop_front() else {
                    break;
                };
                cancelled.extend(state.send(slot, task, &mut frames));
            }
        }
        write_frames(stream, &frames);
        drop(writer);
        drop(cancelled);
    }

    /// The supervisor of one worker slot: starts, serves and replaces its worker until the
    /// pool shuts down.
    fn supervise(
        self: Arc<Self>,
        slot: usize,
        mut report: Option<crossbeam_channel::Sender<Result<(), Error>>>,
    ) {
        {
            let mut state = self.state.lock();
            while !state.started && !state.shutdown {
                self.wake.wait(&mut state);
            }
        }
        let mut failures = 0;
        let mut first = true;
        loop {
            {
                let state = self.state.lock();
                if state.shutdown && state.queue.is_empty() {
                    break;
                }
            }
            let (worker, writer) = match spawn::spawn(&self.config.spawn) {
                Ok(started) => started,
                Err(e) => {
                    failures += 1;
                    if let Some(report) = report.take() {
                        let _ = report.send(Err(e));
                        self.retire(slot, None);
                        return;
                    }
                    if failures >= MAX_SPAWN_FAILURES {
                        self.retire(slot, Some(e.to_string()));
                        return;
                    }
                    continue;
                }
            };
            failures = 0;
            // The writer first: dispatch only picks slots with a pid, and expects a writer there.
            let mut installed = self.writers[slot].lock();
            *installed = Some(writer);
            {
                let mut state = self.state.lock();
                if !first {
                    state.stats.worker_restarts += 1;
                }
                let s = &mut state.slots[slot];
                s.pid = Some(worker.pid);
                s.dispatched = 0;
                s.front_started = None;
            }
            drop(installed);
            first = false;
            // Only now: `build` returns on this report, and then `worker_pids` must list it.
            if let Some(report) = report.take() {
                let _ = report.send(Ok(()));
            }
            self.refill(slot);
            self.close_if_done(slot);
            self.serve(slot, worker);
        }
        self.retire(slot, None);
    }

    /// Reads results until the worker's service ends, then reaps it and settles its tasks.
    fn serve(&self, slot: usize, mut worker: Worker) {
        let end = loop {
            if let Some(timeout) = self.config.task_timeout {
                let front = self.state.lock().slots[slot].front_started;
                let left = front.map_or(timeout, |started| {
                    (started + timeout).saturating_duration_since(Instant::now())
                });
                if left.is_zero() {
                    break End::Timeout;
                }
                if worker
                    .reader
                    .get_mut()
                    .set_read_timeout(Some(left))
                    .is_err()
                {
                    break End::Exited;
                }
            }
            match worker.reader.next_frame() {
                Ok(Some(body)) => match self.on_reply(slot, body) {
                    Ok(true) => {}
                    Ok(false) => break End::Retired,
                    Err(message) => break End::Protocol(message),
                },
                Ok(None) => break End::Exited,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) if e.kind() == ErrorKind::InvalidData => break End::Protocol(e.to_string()),
                Err(_) => break End::Exited,
            }
        };
        let pid = worker.pid;
        let kill = matches!(end, End::Timeout | End::Protocol(_));
        // No more writes to this worker; then the tasks it held are settled below.
        *self.writers[slot].lock() = None;
        let mut in_flight = {
            let mut state = self.state.lock();
            let s = &mut state.slots[slot];
            s.pid = None;
            s.front_started = None;
            std::mem::take(&mut s.in_flight)
        };
        let exit = worker.reap(kill);
        let Some(mut running) = in_flight.pop_front() else {
            return;
        };
        let error = match end {
            End::Timeout => Error::Timeout,
            End::Protocol(message) => Error::Protocol(message),
            End::Exited | End::Retired => Error::WorkerDied { pid, exit },
        };
        let retry =
            matches!(error, Error::WorkerDied { .. }) && running.attempts < self.config.retries;
        let mut state = self.state.lock();
        // Never started on the worker: back to the front of the queue, in their order.
        for task in in_flight.into_iter().rev() {
            state.queue.push_front(task);
        }
        let failed = if retry {
            running.attempts += 1;
            state.queue.push_front(running);
            None
        } else {
            state.stats.failed += 1;
            Some(running)
        };
        drop(state);
        // Idle workers need not wait for the replacement to take the returned tasks.
        (0..self.config.workers)
            .filter(|&other| other != slot)
            .for_each(|other| self.refill(other));
        if let Some(task) = failed {
            task.job.finish(Err(error), Duration::ZERO, &mut drop);
        }
    }

    /// Settles one reply. `Ok(false)` when the worker should now be retired.
    fn on_reply(&self, slot: usize, body: &[u8]) -> Result<bool, String> {
        let received = Instant::now();
        let (header, payload): (FromWorker, &[u8]) =
            protocol::decode_header(body).map_err(|e| e.to_string())?;
        let (id, compute, reply) = match header {
            FromWorker::Done { id, compute_ns } => {
                (id, Duration::from_nanos(compute_ns), Ok(payload))
            }
            FromWorker::Failed { id, failure } => (id, Duration::ZERO, Err(Error::from(failure))),
            other => return Err(format!("unexpected message {other:?}")),
        };
        let (task, started) = {
            let mut state = self.state.lock();
            let s = &mut state.slots[slot];
            let Some(task) = pop_reply(&mut s.in_flight, id) else {
                return Err(format!(
                    "a reply for task {id}, which is not the one running"
                ));
            };
            let started = s.front_started.unwrap_or(received);
            s.front_started = (!s.in_flight.is_empty()).then_some(received);
            (task, started)
        };
        let decode_began = Instant::now();
        let Task {
            job,
            submitted,
            encode,
            ..
        } = task;
        let mut record = |ok: bool| {
            let decode = decode_began.elapsed();
            let ipc = received
                .saturating_duration_since(started)
                .saturating_sub(compute);
            let transfer = encode + ipc + decode;
            let mut state = self.state.lock();
            let stats = &mut state.stats;
            if ok {
                stats.completed += 1;
            } else {
                stats.failed += 1;
            }
            stats.busy += compute;
            stats.queue_wait += started.saturating_duration_since(submitted);
            stats.transfer += transfer;
            let nanos = compute.as_nanos() as f64;
            state.task_nanos = Some(
                state
                    .task_nanos
                    .map_or(nanos, |old| 0.8 * old + 0.2 * nanos),
            );
            state.overhead_nanos = 0.8 * state.overhead_nanos + 0.2 * transfer.as_nanos() as f64;
        };
        job.finish(reply, compute, &mut record);
        let state = self.state.lock();
        let s = &state.slots[slot];
        let used_up = self
            .config
            .max_tasks_per_worker
            .is_some_and(|max| s.dispatched >= max);
        let idle = s.in_flight.is_empty();
        drop(state);
        if used_up && idle {
            return Ok(false);
        }
        self.refill(slot);
        self.close_if_done(slot);
        Ok(true)
    }

    /// During shutdown, closes an idle worker's socket once nothing is left to run; the worker
    /// exits at EOF and its supervisor reaps it.
    fn close_if_done(&self, slot: usize) {
        let mut writer = self.writers[slot].lock();
        let state = self.state.lock();
        if state.shutdown && state.queue.is_empty() && state.slots[slot].in_flight.is_empty() {
            if let Some(stream) = writer.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// A supervisor stops. The last one to stop fails whatever is still queued, since no
    /// worker is left to run it.
    fn retire(&self, slot: usize, why: Option<String>) {
        let mut state = self.state.lock();
        state.slots[slot].pid = None;
        state.live -= 1;
        if let Some(why) = why {
            state.broken = Some(why);
        }
        if state.live > 0 {
            return;
        }
        let why = state.broken.clone();
        let orphans: Vec<Task> = state.queue.drain(..).collect();
        state.stats.failed += orphans.len() as u64;
        drop(state);
        for task in orphans {
            let error = why.clone().map_or(Error::Shutdown, Error::Handshake);
            task.job.finish(Err(error), Duration::ZERO, &mut drop);
        }
    }

    pub(crate) fn shutdown(&self) {
        {
            let mut state = self.state.lock();
            state.shutdown = true;
            self.wake.notify_all();
        }
        for slot in 0..self.config.workers {
            self.close_if_done(slot);
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        let me = std::thread::current().id();
        for handle in threads {
            // A done-callback may shut the pool down from a supervisor thread; that one
            // finishes on its own.
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessPool;

    /// The workers of the test below re-run this test binary filtered to this one test, whose
    /// `init()` turns them into workers; in an ordinary run it returns at once.
    #[test]
    fn worker_entry() {
        crate::init();
    }

    fn triple(x: u32) -> u32 {
        x * 3
    }

    #[test]
    fn works_under_the_standard_test_harness() {
        let pool = ProcessPool::builder()
            .workers(2)
            .worker_args([
                "--exact",
                "process::pool::tests::worker_entry",
                "--nocapture",
                "--quiet",
            ])
            .build()
            .unwrap();
        assert_eq!(pool.submit(triple, 14).result().unwrap(), 42);
        let out: Vec<u32> = pool.map(triple, 0..100).collect::<Result<_, _>>().unwrap();
        assert_eq!(out[99], 297);
        pool.shutdown();
        assert!(pool.worker_pids().is_empty());
    }

    #[test]
    fn rejected_items_return_to_their_positions() {
        let sent = vec![Ok(1), Ok(3)].into_iter();
        let merged = merge(
            sent,
            vec![
                (0, Error::Timeout),
                (2, Error::Cancelled),
                (4, Error::Shutdown),
            ],
        );
        let shape: Vec<_> = merged.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(shape, [None, Some(1), None, Some(3), None]);
    }
}
