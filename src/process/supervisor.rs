//! The parent side of a process pool: one supervisor thread per worker slot, which starts the
//! worker, reads its replies, and replaces it when it dies, overruns a timeout, breaks the
//! protocol or reaches `max_tasks_per_worker`. See `README.md` beside this file for the whole
//! design.

use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard, RwLock};

use super::job::Task;
use super::protocol::{self, FromWorker};
use super::schedule::{State, pop_reply};
use super::spawn::{self, SpawnConfig, Worker};
use crate::{Error, Stats, unwind};

/// The writing half of one worker slot's socket, shared so that a slot's writer can be used
/// without holding the lock of the growable list.
pub(super) type Writer = Arc<Mutex<Option<UnixStream>>>;

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
    pub(super) config: Config,
    pub(super) state: Mutex<State>,
    /// Wakes lazy supervisors at the first task or at shutdown.
    pub(super) wake: Condvar,
    /// The writing half of each worker's socket, `None` while there is no worker. It grows
    /// with `set_workers` (before the slots do), and never shrinks.
    pub(super) writers: RwLock<Vec<Writer>>,
    pub(super) next_id: AtomicU64,
    pub(super) threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    /// Starts the supervisors; for an eager pool, waits until every worker has shaken hands.
    pub(crate) fn start(config: Config) -> Result<Arc<Self>, Error> {
        unwind::install_hook();
        let workers = config.workers;
        let lazy = config.lazy;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(workers, lazy)),
            wake: Condvar::new(),
            writers: RwLock::new((0..workers).map(|_| Writer::default()).collect()),
            next_id: AtomicU64::new(0),
            threads: Mutex::new(Vec::with_capacity(workers)),
            config,
        });
        let (report, reports) = crossbeam_channel::bounded(workers);
        for slot in 0..workers {
            let report = (!lazy).then(|| report.clone());
            match shared.spawn_supervisor(slot, report) {
                Ok(handle) => shared.threads.lock().push(handle),
                Err(e) => {
                    shared.state.lock().live -= workers - slot;
                    shared.shutdown();
                    return Err(e);
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

    /// The number of worker slots in use; see `set_workers`.
    pub(crate) fn workers(&self) -> usize {
        self.state.lock().target
    }

    /// The writer of `slot`'s worker.
    pub(super) fn writer(&self, slot: usize) -> Writer {
        Arc::clone(&self.writers.read()[slot])
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
        let state = self.state.lock();
        Stats {
            workers: state.slots.iter().filter(|s| s.pid.is_some()).count(),
            ..state.stats
        }
    }

    pub(crate) fn chunk_overhead(&self) -> Duration {
        Duration::from_nanos(self.state.lock().overhead_nanos as u64)
    }

    /// The supervisor of one worker slot: starts, serves and replaces its worker until the
    /// pool shuts down or `set_workers` takes the slot out of use.
    pub(super) fn supervise(
        self: Arc<Self>,
        slot: usize,
        mut report: Option<crossbeam_channel::Sender<Result<(), Error>>>,
    ) {
        {
            let mut state = self.state.lock();
            while !state.started && !state.shutdown && slot < state.target {
                self.wake.wait(&mut state);
            }
        }
        let mut failures = 0;
        let mut first = true;
        loop {
            {
                // Checked and retired under one lock, so a `set_workers` that brings the slot
                // back into use either sees it supervised or starts a new supervisor.
                let state = self.state.lock();
                if (state.shutdown && state.queue.is_empty()) || slot >= state.target {
                    self.retire(state, slot, None);
                    return;
                }
            }
            let (worker, writer) = match spawn::spawn(&self.config.spawn) {
                Ok(started) => started,
                Err(e) => {
                    failures += 1;
                    if let Some(report) = report.take() {
                        let _ = report.send(Err(e));
                        self.retire(self.state.lock(), slot, None);
                        return;
                    }
                    if failures >= MAX_SPAWN_FAILURES {
                        self.retire(self.state.lock(), slot, Some(e.to_string()));
                        return;
                    }
                    continue;
                }
            };
            failures = 0;
            // The writer first: dispatch only picks slots with a pid, and expects a writer there.
            let writer_slot = self.writer(slot);
            let mut installed = writer_slot.lock();
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
                Ok(Some(body)) => {
                    // One clock reading dates every reply that this read brought.
                    let received = Instant::now();
                    let mut clock = received;
                    let mut settled = self.on_reply(slot, body, received, &mut clock);
                    // Every reply one read brought is settled before the worker gets more
                    // tasks, so that they leave in one write.
                    while matches!(settled, Ok(true)) && worker.reader.frame_ready() {
                        settled = match worker.reader.next_frame() {
                            Ok(Some(body)) => self.on_reply(slot, body, received, &mut clock),
                            _ => break,
                        };
                    }
                    match settled {
                        Ok(true) => {
                            self.refill(slot);
                            self.close_if_done(slot);
                        }
                        Ok(false) => break End::Retired,
                        Err(message) => break End::Protocol(message),
                    }
                }
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
        *self.writer(slot).lock() = None;
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
        let slots = self.state.lock().slots.len();
        (0..slots)
            .filter(|&other| other != slot)
            .for_each(|other| self.refill(other));
        if let Some(task) = failed {
            task.job
                .finish(Err(error), Duration::ZERO, &Error::from, &mut drop);
        }
    }

    /// Settles one reply. `Ok(false)` when the worker should now be retired; otherwise the
    /// caller refills it.
    ///
    /// `received` is when the read that brought the reply returned; `clock` is the latest
    /// clock reading, which this moves on once the reply is decoded, so that settling each
    /// reply takes one reading.
    fn on_reply(
        &self,
        slot: usize,
        body: &[u8],
        received: Instant,
        clock: &mut Instant,
    ) -> Result<bool, String> {
        let (header, payload): (FromWorker, &[u8]) =
            protocol::decode_header(body).map_err(|e| e.to_string())?;
        let (id, compute, reply) = match header {
            FromWorker::Done { id, compute_ns } => {
                (id, Duration::from_nanos(compute_ns), Ok(payload))
            }
            FromWorker::Failed { id, failure } => (id, Duration::ZERO, Err(Error::from(failure))),
            other => return Err(format!("unexpected message {other:?}")),
        };
        let (task, started, retire) = {
            let mut state = self.state.lock();
            let s = &mut state.slots[slot];
            let Some(task) = pop_reply(&mut s.in_flight, id) else {
                return Err(format!(
                    "a reply for task {id}, which is not the one running"
                ));
            };
            let started = s.front_started.unwrap_or(received);
            s.front_started = (!s.in_flight.is_empty()).then_some(received);
            // Only this thread sends to the slot's worker while it settles replies.
            let used_up = self
                .config
                .max_tasks_per_worker
                .is_some_and(|max| s.dispatched >= max);
            (task, started, used_up && s.in_flight.is_empty())
        };
        let Task {
            job,
            submitted,
            encode,
            ..
        } = task;
        let mut record = |ok: bool| {
            let decoded = Instant::now();
            let decode = decoded.saturating_duration_since(std::mem::replace(clock, decoded));
            let ipc = received
                .saturating_duration_since(started)
                .saturating_sub(compute);
            let queue_wait = started.saturating_duration_since(submitted);
            self.state
                .lock()
                .record(ok, compute, queue_wait, encode + ipc + decode);
        };
        job.finish(reply, compute, &Error::from, &mut record);
        Ok(!retire)
    }

    /// Closes an idle worker's socket during shutdown once nothing is left to run, or once its
    /// slot is out of use; the worker exits at EOF and its supervisor reaps it.
    pub(super) fn close_if_done(&self, slot: usize) {
        let writer = self.writer(slot);
        let mut writer = writer.lock();
        let state = self.state.lock();
        let unneeded = (state.shutdown && state.queue.is_empty()) || slot >= state.target;
        if unneeded && state.slots[slot].in_flight.is_empty() {
            if let Some(stream) = writer.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }

    /// A supervisor stops. The last one to stop fails whatever is still queued, since no
    /// worker is left to run it.
    fn retire(&self, mut state: MutexGuard<'_, State>, slot: usize, why: Option<String>) {
        state.slots[slot].pid = None;
        state.slots[slot].supervised = false;
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
            task.job
                .finish(Err(error), Duration::ZERO, &Error::from, &mut drop);
        }
    }

    pub(crate) fn shutdown(&self) {
        {
            let mut state = self.state.lock();
            state.shutdown = true;
            self.wake.notify_all();
        }
        let slots = self.state.lock().slots.len();
        for slot in 0..slots {
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
    use crate::ProcessPool;

    fn triple(x: u32) -> u32 {
        x * 3
    }

    /// This test binary runs libtest's `main`, which never calls `parexec::init()`: its
    /// workers serve from the constructor, before libtest starts.
    #[test]
    fn works_under_the_standard_test_harness_without_init() {
        let pool = ProcessPool::builder().workers(2).build().unwrap();
        assert_eq!(pool.submit(triple, 14).result().unwrap(), 42);
        let out: Vec<u32> = pool.map(triple, 0..100).collect::<Result<_, _>>().unwrap();
        assert_eq!(out[99], 297);
        pool.shutdown();
        assert!(pool.worker_pids().is_empty());
    }
}
