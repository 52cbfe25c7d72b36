//! A worker rank: the loop every rank but 0 runs inside `parexec::init()` until rank 0 says
//! stop.
//!
//! The rank's main thread (the one that initialised MPI) is the only one that calls MPI. It
//! polls for messages from rank 0 with back-off, hands tasks to local task threads (or, in
//! isolation mode, to a local process pool), and sends each result as soon as a task thread
//! passes it back over a channel; waiting on that channel is how it sleeps, so a finished
//! task never waits for the back-off.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mpi::topology::{Communicator, SimpleCommunicator};

use super::launch::{self, World};
use super::wire::{self, Backoff, FromRank, Isolation, Mailbox, Outbox, TaskFailure, ToRank};
use crate::process::code::{self, Trampoline};
use crate::process::protocol::RemoteFailure;
use crate::{Cores, Error, ProcessPool};

/// The sleep between polls while a task waits on this rank behind every busy thread: only
/// more tasks can arrive then (rank 0 closes a pool once every task came back), or, as rank 0
/// exits, the order to stop.
const QUEUED_NAP: Duration = Duration::from_millis(10);

/// One task as it arrived: the whole message, and where its payload starts in it.
struct RankTask {
    id: u64,
    trampoline: i64,
    func: i64,
    message: Vec<u8>,
    payload_at: usize,
    received: Instant,
}

/// What runs a pool's tasks on this rank.
enum Runner {
    Threads {
        tasks: Sender<RankTask>,
        threads: Vec<JoinHandle<()>>,
    },
    Isolated(ProcessPool),
}

/// The pool being served: its runner, and where finished tasks' replies go.
struct Local {
    runner: Runner,
    threads: usize,
    replies: Mailbox<Vec<u8>>,
    max_frame: usize,
}

/// Serves pools until rank 0 says stop, then finalizes MPI and exits the process.
pub(crate) fn serve(world: &World) -> ! {
    crate::unwind::install_hook();
    wire::precise_sleeps();
    let comm = SimpleCommunicator::world();
    let mut outbox = Outbox::default();
    let cores = Cores::detect();
    let hello = FromRank::Hello {
        version: wire::VERSION,
        identity: launch::identity().ok(),
        host: world.host.clone(),
        pid: std::process::id(),
        cores: u32::try_from(cores.workers()).unwrap_or(u32::MAX),
        online: u32::try_from(cores.online).unwrap_or(u32::MAX),
    };
    outbox.send(&comm, 0, wire::message(&hello));
    let (replies, finished) = Mailbox::new(std::thread::current());
    let mut local: Option<Local> = None;
    let mut max_backoff = wire::DEFAULT_MAX_BACKOFF;
    let mut backoff = Backoff::new(max_backoff);
    // Tasks handed to the runner whose results have not left yet.
    let mut running = 0_usize;
    let root = comm.process_at_rank(0);
    loop {
        let mut active = outbox.progress();
        while let Some((_, message)) = wire::receive(&root) {
            active = true;
            let reply = match wire::decode::<ToRank>(&message) {
                Ok((
                    ToRank::Task {
                        id,
                        trampoline,
                        func,
                    },
                    payload,
                )) => {
                    let task = RankTask {
                        id,
                        trampoline,
                        func,
                        payload_at: message.len() - payload.len(),
                        received: Instant::now(),
                        message,
                    };
                    match &local {
                        Some(local) => {
                            let refused = local.run(task);
                            running += usize::from(refused.is_none());
                            refused
                        }
                        None => Some(reply(
                            task.id,
                            Err(TaskFailure::Other("no pool is open on this rank".into())),
                            [Duration::ZERO; 3],
                            usize::MAX,
                        )),
                    }
                }
                Ok((
                    ToRank::Open {
                        session,
                        threads,
                        isolation,
                        max_backoff_ns,
                        max_frame,
                    },
                    _,
                )) => {
                    close(local.take());
                    running = 0;
                    max_backoff = Duration::from_nanos(max_backoff_ns);
                    backoff = Backoff::new(max_backoff);
                    let threads = match threads {
                        0 => cores.workers(),
                        n => n as usize,
                    };
                    let max_frame = usize::try_from(max_frame).unwrap_or(usize::MAX);
                    Some(wire::message(
                        &match Local::start(threads, isolation, &replies, max_frame) {
                            Ok(started) => {
                                local = Some(started);
                                FromRank::Opened {
                                    session,
                                    threads: threads as u32,
                                }
                            }
                            Err(e) => FromRank::OpenFailed {
                                session,
                                message: e.to_string(),
                            },
                        },
                    ))
                }
                Ok((ToRank::Close { session }, _)) => {
                    close(local.take());
                    Some(wire::message(&FromRank::Closed { session }))
                }
                Ok((ToRank::Stop, _)) => stop(&comm, outbox),
                Err(e) => {
                    eprintln!("parexec: rank {} ignored a message: {e}", world.rank);
                    None
                }
            };
            if let Some(reply) = reply {
                outbox.send(&comm, 0, reply);
            }
        }
        while let Ok(result) = finished.try_recv() {
            outbox.send(&comm, 0, result);
            running = running.saturating_sub(1);
            active = true;
        }
        if active {
            // With every thread busy, the next task from rank 0 is not urgent: a thread that
            // finishes unparks this loop, which then polls at once, so polling eagerly would
            // only take wake-ups from the task threads. With a task queued behind them too,
            // nothing is due before a thread finishes.
            match &local {
                Some(local) if running > local.threads => {
                    backoff.relax(QUEUED_NAP.max(max_backoff))
                }
                Some(local) if running == local.threads => backoff.relax(max_backoff),
                _ => backoff.reset(),
            }
            continue;
        }
        match backoff.next_wait() {
            Duration::ZERO => std::thread::yield_now(),
            wait => std::thread::park_timeout(wait),
        }
    }
}

/// Says goodbye, waits until every message has left, finalizes MPI and exits. Task threads
/// still running die with the process; isolated worker processes exit as their rank does.
fn stop(comm: &SimpleCommunicator, mut outbox: Outbox) -> ! {
    outbox.send(comm, 0, wire::message(&FromRank::Bye));
    while !outbox.is_empty() {
        if !outbox.progress() {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    launch::finalize();
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: `_exit` ends the process at once. A worker rank's `main` never ran past
    // `init()`, so there is nothing of the program's to clean up, and MPI is finalized.
    unsafe { libc::_exit(0) }
}

/// Ends the pool being served: the task threads finish their queue (empty by now: rank 0
/// closes a pool only once every task came back) and are joined.
fn close(local: Option<Local>) {
    if let Some(Local {
        runner: Runner::Threads { tasks, threads },
        ..
    }) = local
    {
        drop(tasks);
        threads.into_iter().for_each(|t| drop(t.join()));
    }
}

impl Local {
    fn start(
        threads: usize,
        isolation: Option<Isolation>,
        replies: &Mailbox<Vec<u8>>,
        max_frame: usize,
    ) -> Result<Self, Error> {
        let runner = match isolation {
            Some(isolation) => {
                let mut builder = ProcessPool::builder().workers(threads);
                if let Some(timeout) = isolation.task_timeout_ns {
                    builder = builder.task_timeout(Duration::from_nanos(timeout));
                }
                Runner::Isolated(builder.build()?)
            }
            None => {
                let (tasks, queue) = crossbeam_channel::unbounded();
                let handles = (0..threads)
                    .map(|i| {
                        let (queue, replies): (Receiver<RankTask>, _) =
                            (queue.clone(), replies.clone());
                        std::thread::Builder::new()
                            .name(format!("parexec-rank-task-{i}"))
                            .spawn(move || {
                                let mut free_since = None;
                                for task in queue {
                                    let reply = run(task, max_frame, free_since);
                                    free_since = Some(Instant::now());
                                    if !replies.post(reply) {
                                        break;
                                    }
                                }
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Runner::Threads {
                    tasks,
                    threads: handles,
                }
            }
        };
        Ok(Local {
            runner,
            threads,
            replies: replies.clone(),
            max_frame,
        })
    }

    /// Starts `task`; returns a reply to send at once if it could not start.
    fn run(&self, task: RankTask) -> Option<Vec<u8>> {
        let max_frame = self.max_frame;
        match &self.runner {
            // The threads outlive this call: they stop only when the sender is dropped.
            Runner::Threads { tasks, .. } => tasks.send(task).err().map(|failed| {
                reply(
                    failed.0.id,
                    Err(TaskFailure::Other("task threads gone".into())),
                    [Duration::ZERO; 3],
                    max_frame,
                )
            }),
            Runner::Isolated(pool) => {
                let payload = task.message[task.payload_at..].to_vec();
                let started = Instant::now();
                let replies = self.replies.clone();
                let id = task.id;
                pool.submit(relay, (task.trampoline, task.func, payload))
                    .add_done_callback(move |outcome| {
                        let outcome = match outcome {
                            Ok(Ok(results)) => Ok(results.clone()),
                            Ok(Err(failure)) => Err(TaskFailure::Remote(failure.clone())),
                            Err(error) => Err(TaskFailure::from(error.clone())),
                        };
                        // How long a worker process waited for it is not known here.
                        let timing = [started.elapsed(), Duration::ZERO, Duration::MAX];
                        replies.post(reply(id, outcome, timing, max_frame));
                    });
                None
            }
        }
    }
}

/// Runs one task on this thread; a panic fails only its own item (see the trampoline).
/// `free_since` is when this thread finished its previous task.
fn run(task: RankTask, max_frame: usize, free_since: Option<Instant>) -> Vec<u8> {
    // SAFETY: rank 0 sends code offsets only to ranks whose hello proved they run the same
    // executable, and only a `Trampoline` offset in this field, paired with the offset of a
    // function of the types that trampoline was built for.
    let trampoline: Trampoline = unsafe { code::resolve(task.trampoline) };
    let started = Instant::now();
    let idle = free_since.map_or(Duration::MAX, |free| {
        started.saturating_duration_since(free)
    });
    let mut results = Vec::new();
    let payload = &task.message[task.payload_at..];
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        trampoline(task.func, payload, &mut results)
    }))
    .unwrap_or_else(|_| {
        Err(RemoteFailure::Serialization(
            "decoding the argument panicked".into(),
        ))
    });
    let outcome = outcome.map(|()| results).map_err(TaskFailure::Remote);
    let queued = started.saturating_duration_since(task.received);
    reply(
        task.id,
        outcome,
        [started.elapsed(), queued, idle],
        max_frame,
    )
}

/// Runs in an isolated rank's worker process: the task's own trampoline over its payload.
fn relay((trampoline, func, payload): (i64, i64, Vec<u8>)) -> Result<Vec<u8>, RemoteFailure> {
    // SAFETY: as in `run`; the worker process is a copy of this rank's executable, so the
    // offsets rank 0 checked for this rank hold there too.
    let trampoline: Trampoline = unsafe { code::resolve(trampoline) };
    let mut results = Vec::new();
    trampoline(func, &payload, &mut results).map(|()| results)
}

/// The message reporting one task's outcome, `[compute, queued, idle]` being how long it
/// ran, how long it waited on this rank for a task thread, and how long that thread had
/// waited for a task (`Duration::MAX`: not known).
fn reply(
    id: u64,
    outcome: Result<Vec<u8>, TaskFailure>,
    [compute, queued, idle]: [Duration; 3],
    max_frame: usize,
) -> Vec<u8> {
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let done = FromRank::Done {
        id,
        compute_ns: nanos(compute),
        queued_ns: nanos(queued),
        idle_ns: nanos(idle),
    };
    let failed = |failure| wire::message(&FromRank::Failed { id, failure });
    match outcome {
        Ok(results) => wire::frame(&done, max_frame, |out| {
            out.extend_from_slice(&results);
            Ok(())
        })
        .unwrap_or_else(|too_big| {
            failed(TaskFailure::Remote(RemoteFailure::Serialization(
                too_big.to_string(),
            )))
        }),
        Err(failure) => failed(failure),
    }
}
