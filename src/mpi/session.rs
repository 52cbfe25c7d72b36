//! Rank 0's side of one open pool: which rank runs what, the futures waiting for results,
//! and the statistics.
//!
//! A task is encoded once, on the submitting thread, into the process pool's frame format. It
//! goes straight to the least-loaded rank with fewer than its window of tasks in flight, or
//! waits in one queue from which the link thread refills a rank as its results come back.
//! A rank's window is its task threads times `1 + cover / (mean task time)`, clamped to
//! 2..=64 per thread, where the cover is twice the measured round trip and at least 2 ms:
//! enough queued on the rank that its threads never wait for rank 0, even while a loaded
//! node delays every wake-up, few enough to keep the load balanced.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::MpiRank;
use super::link::{Command, Link};
use super::wire::{self, FromRank, Origin, ToRank};
use crate::future::promise;
use crate::map::Chunk;
use crate::process::code;
use crate::process::job::{Batch, EncodedChunk, Job, Single, encode_chunk, guarded, merge};
use crate::{Error, Future, Payload, Stats};

/// The least round trip to a busy rank that the in-flight window covers: both ends may be
/// in a back-off sleep of up to a millisecond.
const ROUND_TRIP_NANOS: f64 = 2_000_000.0;
const WINDOW_PER_THREAD: (f64, f64) = (2.0, 64.0);
/// Per-chunk overhead assumed for `map` before one is measured.
const INITIAL_OVERHEAD_NANOS: f64 = 30_000.0;

struct Task {
    id: u64,
    job: Box<dyn Job>,
    submitted: Instant,
    encode: Duration,
    sent: Instant,
}

struct State {
    queue: VecDeque<(Task, Vec<u8>)>,
    /// Tasks on each worker rank (index: rank - 1), by id.
    in_flight: Vec<HashMap<u64, Task>>,
    stats: Stats,
    shutdown: bool,
    /// The process is exiting: everything pending has failed.
    abandoned: bool,
    /// EWMA of compute time per task.
    task_nanos: Option<f64>,
    /// EWMA of what a task costs that the rank's thread could not overlap (see `on_reply`).
    overhead_nanos: f64,
    /// EWMA of a round trip without the task's compute and queueing on the rank.
    round_trip_nanos: f64,
}

impl State {
    /// Nothing queued, nothing in flight.
    fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.iter().all(HashMap::is_empty)
    }
}

/// The most recently opened pool, for calibration.
static CURRENT: Mutex<Weak<Shared>> = Mutex::new(Weak::new());

/// One open pool, shared by its handle, its futures' submitters and the link thread.
pub(crate) struct Shared {
    id: u64,
    ranks: Vec<MpiRank>,
    origins: Vec<Origin>,
    max_frame: usize,
    keep_workers: bool,
    link: &'static Link,
    state: Mutex<State>,
    /// Signalled when nothing is queued or in flight any more.
    idle: Condvar,
    closed: Mutex<bool>,
    next_id: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        id: u64,
        ranks: Vec<MpiRank>,
        max_frame: usize,
        keep_workers: bool,
        link: &'static Link,
    ) -> Arc<Self> {
        let origins = ranks
            .iter()
            .map(|r| Origin {
                rank: r.rank,
                host: r.host.clone(),
            })
            .collect();
        let shared = Arc::new(Shared {
            id,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                in_flight: ranks.iter().map(|_| HashMap::new()).collect(),
                stats: Stats::default(),
                shutdown: false,
                abandoned: false,
                task_nanos: None,
                overhead_nanos: INITIAL_OVERHEAD_NANOS,
                round_trip_nanos: 0.0,
            }),
            ranks,
            origins,
            max_frame,
            keep_workers,
            link,
            idle: Condvar::new(),
            closed: Mutex::new(false),
            next_id: AtomicU64::new(0),
        });
        link.send(Command::Attach(Arc::clone(&shared)));
        *CURRENT.lock() = Arc::downgrade(&shared);
        shared
    }

    /// The pool open right now, if any.
    pub(crate) fn current() -> Option<Arc<Shared>> {
        CURRENT
            .lock()
            .upgrade()
            .filter(|s| !s.state.lock().shutdown)
    }

    /// Task threads over all worker ranks.
    pub(crate) fn workers(&self) -> usize {
        self.ranks.iter().map(|r| r.threads).sum()
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn ranks(&self) -> &[MpiRank] {
        &self.ranks
    }

    /// The counters so far, with `workers` the task threads of the ranks until the pool is
    /// closed, 0 after.
    pub(crate) fn stats(&self, workers: usize) -> Stats {
        let open = !*self.closed.lock();
        Stats {
            workers: if open { workers } else { 0 },
            ..self.state.lock().stats
        }
    }

    pub(crate) fn chunk_overhead(&self) -> Duration {
        Duration::from_nanos(self.state.lock().overhead_nanos as u64)
    }

    /// How long the link thread may sleep between polls for results while every rank has
    /// tasks queued behind its threads: half the work the least-covered rank has queued, at
    /// most `cap`, so a result picked up a nap late, and the refill it triggers, reach the
    /// rank before any of its threads runs out of work. `None` while some rank has a thread
    /// that is free or about to be: its next task waits on this very poll.
    pub(crate) fn poll_nap(&self, cap: Duration) -> Option<Duration> {
        let state = self.state.lock();
        let loads = self.ranks.iter().zip(&state.in_flight);
        poll_nap(
            loads.map(|(rank, tasks)| (rank.threads, tasks.len())),
            state.task_nanos?,
            cap,
        )
    }

    /// Whether results are still to come.
    pub(crate) fn expecting(&self) -> bool {
        self.state
            .lock()
            .in_flight
            .iter()
            .any(|tasks| !tasks.is_empty())
    }

    fn window(&self, state: &State, slot: usize) -> usize {
        let per_thread = state.task_nanos.map_or(WINDOW_PER_THREAD.0 * 2.0, |nanos| {
            let cover = ROUND_TRIP_NANOS.max(2.0 * state.round_trip_nanos);
            (1.0 + cover / nanos.max(1.0)).clamp(WINDOW_PER_THREAD.0, WINDOW_PER_THREAD.1)
        });
        self.ranks[slot].threads.max(1) * per_thread as usize
    }

    /// The worker rank (as an index) with the fewest tasks per thread among those with room.
    fn least_loaded(&self, state: &State) -> Option<usize> {
        (0..self.ranks.len())
            .filter(|&slot| state.in_flight[slot].len() < self.window(state, slot))
            .min_by_key(|&slot| state.in_flight[slot].len() * 64 / self.ranks[slot].threads.max(1))
    }

    fn frame<A: Payload, R: Payload>(
        &self,
        id: u64,
        f: fn(A) -> R,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<Vec<u8>, Error> {
        let header = ToRank::Task {
            id,
            trampoline: code::trampoline_offset::<A, R>(),
            func: code::offset_of(f as usize),
        };
        wire::frame(&header, self.max_frame, payload)
    }

    pub(crate) fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        let began = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let encoded = self.frame::<A, R>(id, f, |out| {
            guarded("encode the argument", || {
                postcard::to_io(std::slice::from_ref(&arg), out).map(drop)
            })
        });
        let (promise, future) = promise();
        self.dispatch(id, began, encoded, Box::new(Single(promise)));
        future
    }

    pub(crate) fn dispatch_chunk<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        items: Vec<A>,
    ) -> Future<Chunk<R>> {
        let began = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let EncodedChunk {
            frame: encoded,
            sent,
            rejected,
        } = encode_chunk(&items, |payload| self.frame::<A, R>(id, f, payload));
        let (promise, future) = promise();
        if sent == 0 && encoded.is_ok() {
            let mut state = self.state.lock();
            state.stats.submitted += 1;
            state.stats.completed += 1;
            drop(state);
            promise.complete(Ok(Chunk::from_results(
                merge(std::iter::empty::<Result<R, Error>>(), rejected),
                Duration::ZERO,
            )));
            return future;
        }
        self.dispatch(
            id,
            began,
            encoded,
            Box::new(Batch {
                promise,
                sent,
                rejected,
            }),
        );
        future
    }

    /// Sends the task to the least-loaded rank with room, or queues it.
    fn dispatch(
        &self,
        id: u64,
        began: Instant,
        encoded: Result<Vec<u8>, Error>,
        job: Box<dyn Job>,
    ) {
        let mut state = self.state.lock();
        state.stats.submitted += 1;
        let accepted = match encoded {
            Ok(_) if state.shutdown || state.abandoned => Err(Error::Shutdown),
            other => other,
        };
        let message = match accepted {
            Ok(message) => message,
            Err(error) => {
                state.stats.failed += 1;
                drop(state);
                return job.finish(Err(error), Duration::ZERO, &Error::from, &mut drop);
            }
        };
        let task = Task {
            id,
            job,
            submitted: began,
            encode: began.elapsed(),
            sent: Instant::now(),
        };
        match self.least_loaded(&state) {
            Some(slot) => {
                let cancelled = Self::place(&mut state, slot, task);
                drop(state);
                match cancelled {
                    Some(task) => drop(task),
                    None => self.link.send(Command::Send {
                        rank: slot + 1,
                        message,
                    }),
                }
            }
            None => state.queue.push_back((task, message)),
        }
    }

    /// Records `task` as sent to `slot`; gives it back if it was cancelled meanwhile (dropping
    /// it then resolves its future as cancelled).
    fn place(state: &mut State, slot: usize, mut task: Task) -> Option<Task> {
        if !task.job.start() {
            state.stats.cancelled += 1;
            return Some(task);
        }
        task.sent = Instant::now();
        state.in_flight[slot].insert(task.id, task);
        None
    }

    /// Settles one reply on the link thread, then refills that rank through `send`.
    pub(crate) fn on_reply(
        &self,
        rank: usize,
        header: FromRank,
        payload: &[u8],
        send: &mut dyn FnMut(usize, Vec<u8>),
    ) {
        let received = Instant::now();
        let slot = rank - 1;
        let (id, [compute, queued, idle], reply) = match header {
            FromRank::Done {
                id,
                compute_ns,
                queued_ns,
                idle_ns,
            } => (
                id,
                [compute_ns, queued_ns, idle_ns].map(Duration::from_nanos),
                Ok(payload),
            ),
            FromRank::Failed { id, failure } => (
                id,
                [Duration::ZERO, Duration::ZERO, Duration::MAX],
                Err(self.origins[slot].error(failure)),
            ),
            _ => return,
        };
        let Some(task) = self
            .state
            .lock()
            .in_flight
            .get_mut(slot)
            .and_then(|tasks| tasks.remove(&id))
        else {
            return;
        };
        let decode_began = Instant::now();
        let mut record = |ok: bool| {
            // What the rank spent waiting for a free thread is queueing, not transfer.
            let round_trip = received
                .saturating_duration_since(task.sent)
                .saturating_sub(compute + queued);
            let decode = decode_began.elapsed();
            let transfer = task.encode + round_trip + decode;
            let mut state = self.state.lock();
            let stats = &mut state.stats;
            if ok {
                stats.completed += 1
            } else {
                stats.failed += 1
            }
            stats.busy += compute;
            stats.queue_wait += task.sent.saturating_duration_since(task.submitted) + queued;
            stats.transfer += transfer;
            let nanos = compute.as_nanos() as f64;
            state.task_nanos = Some(
                state
                    .task_nanos
                    .map_or(nanos, |old| 0.8 * old + 0.2 * nanos),
            );
            // What a chunk costs the map is what the rank's thread could not overlap: the
            // encoding, the decoding, and the wait of the thread for this task. The rest of
            // the round trip (both ends' polling, waiting for a core on a busy node) passed
            // while the thread ran the tasks queued before it.
            let overhead = task.encode + decode + round_trip.min(idle);
            state.overhead_nanos = 0.8 * state.overhead_nanos + 0.2 * overhead.as_nanos() as f64;
            state.round_trip_nanos =
                0.8 * state.round_trip_nanos + 0.2 * round_trip.as_nanos() as f64;
        };
        let origin = &self.origins[slot];
        let failure = |failure| origin.item_error(failure);
        task.job.finish(reply, compute, &failure, &mut record);
        let mut state = self.state.lock();
        let mut cancelled = Vec::new();
        while state.in_flight[slot].len() < self.window(&state, slot) {
            let Some((task, message)) = state.queue.pop_front() else {
                break;
            };
            match Self::place(&mut state, slot, task) {
                Some(task) => cancelled.push(task),
                None => send(rank, message),
            }
        }
        let idle = state.is_idle();
        drop(state);
        drop(cancelled);
        if idle {
            self.idle.notify_all();
        }
    }

    /// The process is exiting: fails everything queued or in flight.
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        state.abandoned = true;
        let mut failed: Vec<Task> = state.queue.drain(..).map(|(task, _)| task).collect();
        failed.extend(
            state
                .in_flight
                .iter_mut()
                .flat_map(|tasks| tasks.drain().map(|(_, task)| task)),
        );
        state.stats.failed += failed.len() as u64;
        drop(state);
        self.idle.notify_all();
        for task in failed {
            task.job.finish(
                Err(Error::Shutdown),
                Duration::ZERO,
                &Error::from,
                &mut drop,
            );
        }
    }

    /// Stops accepting tasks, waits for the queued and running ones, then closes the pool on
    /// every rank (or stops the ranks, unless the pool keeps them). Idempotent.
    pub(crate) fn shutdown(self: &Arc<Self>) {
        self.state.lock().shutdown = true;
        if self.link.is_current_thread() {
            // A done-callback on the link thread: waiting here would stop the very thread
            // that delivers the results, so another thread finishes the job.
            let shared = Arc::clone(self);
            let _ = std::thread::Builder::new()
                .name("parexec-mpi-close".into())
                .spawn(move || shared.shutdown());
            return;
        }
        let mut closed = self.closed.lock();
        if *closed {
            return;
        }
        let mut state = self.state.lock();
        while !(state.abandoned || state.is_idle()) {
            self.idle.wait(&mut state);
        }
        let abandoned = state.abandoned;
        drop(state);
        if !abandoned {
            let (reply, done) = crossbeam_channel::bounded(1);
            self.link.send(Command::Close {
                stop: !self.keep_workers,
                reply,
            });
            let _ = done.recv();
        }
        *closed = true;
    }
}

/// [`Shared::poll_nap`] over `(threads, tasks in flight)` per rank.
fn poll_nap(
    ranks: impl Iterator<Item = (usize, usize)>,
    task_nanos: f64,
    cap: Duration,
) -> Option<Duration> {
    let covered = ranks
        .map(|(threads, in_flight)| {
            let threads = threads.max(1);
            in_flight.saturating_sub(threads) as f64 * task_nanos / threads as f64
        })
        .fold(f64::INFINITY, f64::min);
    let nap = Duration::from_nanos((covered / 2.0).min(u64::MAX as f64) as u64).min(cap);
    (nap >= wire::FIRST_SLEEP).then_some(nap)
}

#[cfg(test)]
mod test;
