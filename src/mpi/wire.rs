//! What rank 0 and the worker ranks say to each other, and how it travels: the process pool's
//! postcard frames sent as MPI messages without blocking, and the back-off that keeps idle
//! ranks off the CPU. The message table is in this folder's README.

use std::time::{Duration, Instant};

use mpi::point_to_point::{Destination, MatchedReceiveVec, Source};
use mpi::request::{Request, StaticScope};
use mpi::topology::{Communicator, SimpleCommunicator};
use serde::{Deserialize, Serialize};

use crate::process::protocol::{self, RemoteFailure};
use crate::{Error, WorkerExit};

/// Bumped whenever a message changes shape; part of every rank's hello.
pub(crate) const VERSION: u32 = 2;

/// Bytes of the process pool's length prefix, which every MPI message keeps as a check.
const PREFIX: usize = 4;

/// Messages from rank 0 to a worker rank.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ToRank {
    /// Start serving a pool: `threads` task threads (0: the cores this rank may use), in
    /// worker processes if `isolation` is given.
    Open {
        session: u64,
        threads: u32,
        isolation: Option<Isolation>,
        max_backoff_ns: u64,
        max_frame: u64,
    },
    /// Run `func` over the payload's items (a postcard `Vec<A>`) through `trampoline`.
    Task { id: u64, trampoline: i64, func: i64 },
    /// The pool is done: stop the task threads, stay for the next pool.
    Close { session: u64 },
    /// The job is done: say goodbye, finalize MPI and exit.
    Stop,
}

/// How an isolated rank runs its tasks in a local process pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Isolation {
    pub(crate) task_timeout_ns: Option<u64>,
}

/// Messages from a worker rank to rank 0.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum FromRank {
    /// Sent once, first, before any code offset may be sent to this rank.
    Hello {
        version: u32,
        /// A hash of the executable's contents; `None` if it could not be read.
        identity: Option<u64>,
        host: String,
        pid: u32,
        /// The cores this rank may run on.
        cores: u32,
        /// The cores its node has online.
        online: u32,
    },
    /// The rank serves the pool with this many task threads.
    Opened { session: u64, threads: u32 },
    /// The rank could not start serving (its local process pool failed to start).
    OpenFailed { session: u64, message: String },
    /// A task ran; the payload holds one `Result<R, RemoteFailure>` per item. `queued_ns` is
    /// how long it waited on the rank for a free task thread, `idle_ns` how long that thread
    /// had waited for a task (`u64::MAX`: not known).
    Done {
        id: u64,
        compute_ns: u64,
        queued_ns: u64,
        idle_ns: u64,
    },
    /// A task failed as a whole.
    Failed { id: u64, failure: TaskFailure },
    /// The rank stopped serving the pool.
    Closed { session: u64 },
    /// The rank is finalizing MPI and exiting.
    Bye,
}

/// Why a whole task failed on a worker rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum TaskFailure {
    /// The payload could not be decoded.
    Remote(RemoteFailure),
    /// The isolated worker process running it died.
    WorkerDied { pid: u32, exit: Exit },
    /// The isolated worker process running it overran the task timeout.
    Timeout,
    /// Anything else the local process pool reported.
    Other(String),
}

/// [`WorkerExit`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
    Unknown,
}

impl From<WorkerExit> for Exit {
    fn from(exit: WorkerExit) -> Self {
        match exit {
            WorkerExit::Code(code) => Exit::Code(code),
            WorkerExit::Signal(signal) => Exit::Signal(signal),
            WorkerExit::Unknown => Exit::Unknown,
        }
    }
}

impl From<Error> for TaskFailure {
    fn from(error: Error) -> Self {
        match error {
            Error::WorkerDied { pid, exit } => TaskFailure::WorkerDied {
                pid,
                exit: exit.into(),
            },
            Error::Timeout => TaskFailure::Timeout,
            Error::Panicked { message, location } => {
                TaskFailure::Remote(RemoteFailure::Panicked { message, location })
            }
            Error::Serialization(message) => {
                TaskFailure::Remote(RemoteFailure::Serialization(message))
            }
            other => TaskFailure::Other(other.to_string()),
        }
    }
}

/// Where a result came from, so that failures can say so.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) rank: usize,
    pub(crate) host: String,
}

impl Origin {
    /// The error a remote failure becomes on rank 0; panics name the rank and host.
    pub(crate) fn error(&self, failure: TaskFailure) -> Error {
        match failure {
            TaskFailure::Remote(RemoteFailure::Panicked { message, location }) => {
                self.panicked(message, location)
            }
            TaskFailure::Remote(other) => Error::from(other),
            TaskFailure::WorkerDied { pid, exit } => Error::WorkerDied {
                pid,
                exit: match exit {
                    Exit::Code(code) => WorkerExit::Code(code),
                    Exit::Signal(signal) => WorkerExit::Signal(signal),
                    Exit::Unknown => WorkerExit::Unknown,
                },
            },
            TaskFailure::Timeout => Error::Timeout,
            TaskFailure::Other(message) => {
                Error::Mpi(format!("rank {} on {}: {message}", self.rank, self.host))
            }
        }
    }

    /// An item's failure; panics name the rank and host.
    pub(crate) fn item_error(&self, failure: RemoteFailure) -> Error {
        match failure {
            RemoteFailure::Panicked { message, location } => self.panicked(message, location),
            other => Error::from(other),
        }
    }

    fn panicked(&self, message: String, location: Option<String>) -> Error {
        Error::Panicked {
            message: format!("{message} (on rank {}, host {})", self.rank, self.host),
            location,
        }
    }
}

/// Encodes one message in the process pool's frame format.
pub(crate) fn frame<H: Serialize>(
    header: &H,
    max_frame: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    protocol::encode_frame(header, max_frame, payload)
}

/// A message without payload; only fails for a header that cannot encode, which the
/// fixed-shape headers here never are.
pub(crate) fn message<H: Serialize>(header: &H) -> Vec<u8> {
    frame(header, usize::MAX, |_| Ok(())).unwrap_or_default()
}

/// Splits a received message into its header and payload. The length prefix must match the
/// message's size: MPI already delimits messages, so a mismatch means a foreign sender.
pub(crate) fn decode<'a, H: Deserialize<'a>>(message: &'a [u8]) -> Result<(H, &'a [u8]), Error> {
    let Some((prefix, body)) = message.split_first_chunk::<PREFIX>() else {
        return Err(Error::Protocol(format!(
            "a {}-byte MPI message is too short",
            message.len()
        )));
    };
    if u32::from_le_bytes(*prefix) as usize != body.len() {
        return Err(Error::Protocol(
            "an MPI message whose length prefix does not match its size".into(),
        ));
    }
    protocol::decode_header(body)
}

/// The next message waiting from `source`, if any; never blocks.
pub(crate) fn receive(source: &impl Source) -> Option<(usize, Vec<u8>)> {
    let (bytes, status) = source
        .immediate_matched_probe()?
        .matched_receive_vec::<u8>();
    Some((usize::try_from(status.source_rank()).unwrap_or(0), bytes))
}

/// A message being sent: MPI reads from the buffer until the request completes.
struct InFlight {
    request: Request<'static, [u8], StaticScope>,
    buffer: *mut [u8],
}

/// Messages handed to MPI without waiting for the receiver, completed by [`Outbox::progress`].
///
/// Blocking sends could deadlock: two ranks each sending a large message (which MPI delivers
/// only once the receiver matches it) would wait for each other forever.
#[derive(Default)]
pub(crate) struct Outbox {
    in_flight: Vec<InFlight>,
}

impl Outbox {
    /// Starts sending `bytes` to `rank`.
    pub(crate) fn send(&mut self, comm: &SimpleCommunicator, rank: usize, bytes: Vec<u8>) {
        let buffer = Box::into_raw(bytes.into_boxed_slice());
        // SAFETY: `buffer` comes from `Box::into_raw`, so it is valid and unaliased; it is
        // freed only in `progress`, after MPI reports the send complete and the request
        // holding the shared reference has been consumed. A send still running when the
        // process exits leaks its buffer, which is harmless then.
        let data: &'static [u8] = unsafe { &*buffer };
        let rank = i32::try_from(rank).unwrap_or(i32::MAX);
        let request = comm.process_at_rank(rank).immediate_send(StaticScope, data);
        self.in_flight.push(InFlight { request, buffer });
    }

    /// Completes the sends that MPI has finished; `true` if any did.
    pub(crate) fn progress(&mut self) -> bool {
        let before = self.in_flight.len();
        let mut still = Vec::with_capacity(before);
        for InFlight { request, buffer } in self.in_flight.drain(..) {
            match request.test() {
                Ok(_) => {
                    // SAFETY: the send completed, so MPI no longer reads the buffer, and
                    // `test` consumed the request that held the only other reference.
                    drop(unsafe { Box::from_raw(buffer) });
                }
                Err(request) => still.push(InFlight { request, buffer }),
            }
        }
        self.in_flight = still;
        self.in_flight.len() < before
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}

/// The sending side of a queue whose consumer sleeps in `std::thread::park_timeout`.
///
/// A crossbeam `recv_timeout` spins and yields a few times before it sleeps; on an idle rank
/// that polls a thousand times a second, those yields cost more than the poll itself.
pub(crate) struct Mailbox<T> {
    sender: crossbeam_channel::Sender<T>,
    consumer: std::thread::Thread,
}

impl<T> Clone for Mailbox<T> {
    fn clone(&self) -> Self {
        Mailbox {
            sender: self.sender.clone(),
            consumer: self.consumer.clone(),
        }
    }
}

impl<T> Mailbox<T> {
    /// A mailbox for `consumer`, which takes the items from the receiver.
    pub(crate) fn new(consumer: std::thread::Thread) -> (Self, crossbeam_channel::Receiver<T>) {
        let (sender, receiver) = crossbeam_channel::unbounded();
        (Mailbox { sender, consumer }, receiver)
    }

    /// Queues `item` and wakes the consumer; `false` if the consumer is gone.
    pub(crate) fn post(&self, item: T) -> bool {
        let sent = self.sender.send(item).is_ok();
        self.consumer.unpark();
        sent
    }
}

/// How long a loop that found nothing to do spins before it sleeps.
const SPIN: Duration = Duration::from_micros(20);
/// The first sleep after spinning; later ones double up to the cap. Shorter sleeps gain
/// nothing: waking a thread costs some tens of microseconds on a virtual machine.
pub(crate) const FIRST_SLEEP: Duration = Duration::from_micros(50);
/// How long after the last activity the sleeps stay at their shortest.
const HOLD: Duration = Duration::from_millis(2);
/// The default cap of the sleeps: an idle rank wakes about a thousand times a second.
pub(crate) const DEFAULT_MAX_BACKOFF: Duration = Duration::from_millis(1);
/// The cap of rank 0 while results of short tasks are due: rank 0 is not idle then, and
/// every sleep is latency added to each task's round trip.
pub(crate) const RESULT_BACKOFF: Duration = Duration::from_micros(250);

/// Makes this thread's timed sleeps end when asked. Linux lets a sleep overrun by the
/// thread's timer slack, 50 µs by default, to batch wake-ups; that would double the 50 µs
/// naps that follow activity, and with them a task's round trip.
pub(crate) fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    // SAFETY: `PR_SET_TIMERSLACK` takes a plain integer and changes only the calling thread's
    // timer slack; no memory is passed or touched. A failure leaves the default slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1_000 as libc::c_ulong);
    }
}

/// Polling with back-off: spin briefly (a reply often follows within microseconds), then
/// sleep for doubling intervals up to a cap, so an idle rank costs a few percent of a core
/// instead of the whole core that a blocking MPI receive spins on.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    idle_since: Option<Instant>,
    sleep: Duration,
    max: Duration,
    /// Skip the spin and the short sleeps: nothing is expected soon.
    relaxed: bool,
}

impl Backoff {
    pub(crate) fn new(max: Duration) -> Self {
        Backoff {
            idle_since: None,
            sleep: FIRST_SLEEP.min(max),
            max,
            relaxed: false,
        }
    }

    /// Something happened: poll eagerly again.
    pub(crate) fn reset(&mut self) {
        self.idle_since = None;
        self.sleep = FIRST_SLEEP.min(self.max);
        self.relaxed = false;
    }

    /// Something happened, but the next message is not urgent (a busy rank has queued
    /// tasks; rank 0's tasks run so long that the in-flight window covers the wait): poll
    /// every `nap` from now on, without spinning or ramping up. Each short sleep costs a
    /// wake-up, some tens of microseconds of CPU that would otherwise go to the tasks.
    pub(crate) fn relax(&mut self, nap: Duration) {
        self.idle_since = None;
        self.sleep = nap;
        self.relaxed = true;
    }

    /// How long to wait before the next poll: zero while spinning.
    pub(crate) fn next_wait(&mut self) -> Duration {
        let since = *self.idle_since.get_or_insert_with(Instant::now);
        if !self.relaxed && since.elapsed() < SPIN {
            return Duration::ZERO;
        }
        let wait = self.sleep;
        // Replies to a message usually come within a couple of milliseconds (a round trip
        // through the other side's back-off): short sleeps until then, doubling after.
        if !self.relaxed && since.elapsed() >= HOLD {
            self.sleep = (self.sleep * 2).min(self.max);
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_foreign_bytes_are_rejected() {
        let bytes = frame(
            &FromRank::Done {
                id: 7,
                compute_ns: 9,
                queued_ns: 1,
                idle_ns: 2,
            },
            1 << 20,
            |out| {
                out.extend_from_slice(&[1, 2, 3]);
                Ok(())
            },
        )
        .unwrap();
        let (header, payload): (FromRank, _) = decode(&bytes).unwrap();
        assert!(matches!(
            header,
            FromRank::Done {
                id: 7,
                compute_ns: 9,
                queued_ns: 1,
                idle_ns: 2
            }
        ));
        assert_eq!(payload, [1, 2, 3]);
        assert!(matches!(
            decode::<FromRank>(&bytes[..3]),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            decode::<FromRank>(&bytes[..bytes.len() - 1]),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn panics_name_the_rank_and_host() {
        let origin = Origin {
            rank: 2,
            host: "node7".into(),
        };
        let error = origin.item_error(RemoteFailure::Panicked {
            message: "boom".into(),
            location: None,
        });
        assert!(
            matches!(&error, Error::Panicked { message, .. } if message == "boom (on rank 2, host node7)"),
            "{error:?}"
        );
        let died = origin.error(TaskFailure::from(Error::WorkerDied {
            pid: 5,
            exit: WorkerExit::Signal(11),
        }));
        assert!(matches!(
            died,
            Error::WorkerDied {
                pid: 5,
                exit: WorkerExit::Signal(11)
            }
        ));
    }

    #[test]
    fn backoff_spins_then_sleeps_doubling_up_to_the_cap() {
        let mut backoff = Backoff::new(Duration::from_micros(200));
        assert_eq!(backoff.next_wait(), Duration::ZERO);
        std::thread::sleep(SPIN);
        assert_eq!(
            backoff.next_wait(),
            FIRST_SLEEP,
            "short sleeps while a reply is likely"
        );
        std::thread::sleep(HOLD);
        let waits: Vec<_> = (0..4).map(|_| backoff.next_wait()).collect();
        // The first may already have doubled if this thread stalled past the hold.
        assert!(
            [FIRST_SLEEP, 2 * FIRST_SLEEP].contains(&waits[0]),
            "{waits:?}"
        );
        assert!(
            waits
                .windows(2)
                .all(|w| w[1] == (2 * w[0]).min(Duration::from_micros(200))),
            "doubling, capped: {waits:?}"
        );
        assert_eq!(waits[3], Duration::from_micros(200));
        backoff.reset();
        assert_eq!(backoff.next_wait(), Duration::ZERO);
        backoff.relax(Duration::from_millis(1));
        let relaxed = [backoff.next_wait(), backoff.next_wait()];
        assert_eq!(relaxed, [Duration::from_millis(1); 2], "no spin, no ramp");
    }
}
