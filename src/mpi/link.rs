//! Rank 0's link to the worker ranks: the one thread of rank 0 that calls MPI.
//!
//! Pools, submitters and the exit handler talk to it through one channel of [`Command`]s;
//! it sends their messages without blocking, polls for the ranks' messages with back-off
//! while it expects any, and blocks on the channel (no CPU at all) while it expects none.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use mpi::topology::{Communicator, SimpleCommunicator};

use super::session::Shared;
use super::threads::{self, Placement};
use super::wire::{self, Backoff, FromRank, Isolation, Mailbox, Outbox, ToRank};
use super::{MpiRank, launch};
use crate::Error;

/// What a pool asks of the worker ranks when it opens.
#[derive(Debug, Clone)]
pub(crate) struct OpenRequest {
    pub(crate) threads: u32,
    pub(crate) isolation: Option<Isolation>,
    pub(crate) max_backoff: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_frame: usize,
}

pub(crate) enum Command {
    /// A task message for a worker rank.
    Send { rank: usize, message: Vec<u8> },
    /// Open a pool on every worker rank; replies with the ranks and their threads.
    Open {
        request: OpenRequest,
        reply: Sender<Result<(u64, Vec<MpiRank>), Error>>,
    },
    /// Route the ranks' results to this pool from now on.
    Attach(Arc<Shared>),
    /// Close the open pool on every rank, or stop the ranks for good; replies when all did.
    Close { stop: bool, reply: Sender<()> },
    /// The process is exiting: fail what is pending, stop the ranks; replies when all did.
    Exit { reply: Sender<()> },
}

/// The handle through which rank 0 reaches its link thread.
pub(crate) struct Link {
    commands: Mailbox<Command>,
    thread: std::thread::ThreadId,
}

impl Link {
    pub(crate) fn send(&self, command: Command) {
        // The link thread ends only as the process exits, when nobody waits for it.
        let _ = self.commands.post(command);
    }

    pub(crate) fn is_current_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }
}

/// The link of this process, started on first use. Only rank 0 of a job with workers has one.
pub(crate) fn link() -> Result<&'static Link, Error> {
    static LINK: OnceLock<Result<Link, String>> = OnceLock::new();
    LINK.get_or_init(|| {
        let world = launch::world().ok_or("not an MPI rank")?;
        let size = world.size;
        let (handing, receiver) = crossbeam_channel::bounded(1);
        let thread = std::thread::Builder::new()
            .name("parexec-mpi-link".into())
            .spawn(move || {
                if let Ok(commands) = receiver.recv() {
                    Linker::new(size, commands).run();
                }
            })
            .map_err(|e| format!("could not start the MPI thread: {e}"))?;
        let (commands, receiver) = Mailbox::new(thread.thread().clone());
        let _ = handing.send(receiver);
        Ok(Link {
            commands,
            thread: thread.thread().id(),
        })
    })
    .as_ref()
    .map_err(|e| Error::Mpi(e.clone()))
}

/// Stops every worker rank and waits for their goodbyes; `false` if they did not all answer
/// within `timeout`.
pub(crate) fn stop_workers(timeout: Duration) -> bool {
    let Ok(link) = link() else {
        return false;
    };
    let (reply, done) = crossbeam_channel::bounded(1);
    link.send(Command::Exit { reply });
    done.recv_timeout(timeout).is_ok()
}

/// A hello, as kept until a pool opens.
struct Hello {
    identity: Option<u64>,
    host: String,
    pid: u32,
    cores: u32,
    online: u32,
}

/// An exchange with every worker rank that waits for one answer from each.
enum Pending {
    Open {
        session: u64,
        request: OpenRequest,
        reply: Sender<Result<(u64, Vec<MpiRank>), Error>>,
        deadline: Instant,
        sent: bool,
        threads: Vec<Option<u32>>,
        failure: Option<String>,
    },
    Close {
        reply: Sender<()>,
        waiting: usize,
    },
}

struct Linker {
    comm: SimpleCommunicator,
    commands: Receiver<Command>,
    outbox: Outbox,
    hellos: Vec<Option<Hello>>,
    pending: Option<Pending>,
    session: Option<Arc<Shared>>,
    next_session: u64,
    /// Set once the ranks were told to stop: no pool can open after that.
    stopped: bool,
    /// Ranks that have said goodbye.
    byes: usize,
    /// Exit requests waiting for the last goodbye.
    exits: Vec<Sender<()>>,
    backoff: Backoff,
}

impl Linker {
    fn new(size: usize, commands: Receiver<Command>) -> Self {
        Linker {
            comm: SimpleCommunicator::world(),
            commands,
            outbox: Outbox::default(),
            hellos: (0..size).map(|_| None).collect(),
            pending: None,
            session: None,
            next_session: 1,
            stopped: false,
            byes: 0,
            exits: Vec::new(),
            backoff: Backoff::new(wire::RESULT_BACKOFF),
        }
    }

    fn workers(&self) -> usize {
        self.hellos.len() - 1
    }

    fn run(mut self) {
        wire::precise_sleeps();
        loop {
            let mut active = false;
            while let Ok(command) = self.commands.try_recv() {
                self.on_command(command);
                active = true;
            }
            active |= self.outbox.progress();
            while let Some((rank, message)) = wire::receive(&self.comm.any_process()) {
                self.on_message(rank, &message);
                active = true;
            }
            active |= self.advance_open();
            if !self.exits.is_empty() && self.byes == self.workers() && self.outbox.is_empty() {
                // The exit handler finalizes MPI once it hears back, so this thread must
                // make no MPI call after answering: it ends here.
                for reply in self.exits.drain(..) {
                    let _ = reply.send(());
                }
                return;
            }
            if active {
                let nap = self.session.as_ref().and_then(|session| {
                    self.pending
                        .is_none()
                        .then(|| session.poll_nap(wire::DEFAULT_MAX_BACKOFF))?
                });
                match nap {
                    Some(nap) => self.backoff.relax(nap),
                    None => self.backoff.reset(),
                }
                continue;
            }
            if !self.expecting() {
                std::thread::park();
            } else {
                match self.backoff.next_wait() {
                    Duration::ZERO => std::thread::yield_now(),
                    wait => std::thread::park_timeout(wait),
                }
            }
        }
    }

    /// Whether a message from some rank may be on its way.
    fn expecting(&self) -> bool {
        self.pending.is_some()
            || !self.exits.is_empty()
            || !self.outbox.is_empty()
            || self.session.as_ref().is_some_and(|s| s.expecting())
    }

    fn broadcast(&mut self, message: &ToRank) {
        let bytes = wire::message(message);
        for rank in 1..self.hellos.len() {
            self.outbox.send(&self.comm, rank, bytes.clone());
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Send { rank, message } => self.outbox.send(&self.comm, rank, message),
            Command::Open { request, reply } => {
                let refusal = if self.stopped {
                    Some(
                        "the worker ranks have exited: the pool that stopped them was built without keep_workers()",
                    )
                } else if self.session.is_some() || self.pending.is_some() {
                    Some("another MpiPool is open in this process; shut it down first")
                } else {
                    None
                };
                if let Some(why) = refusal {
                    let _ = reply.send(Err(Error::Mpi(why.into())));
                    return;
                }
                let session = self.next_session;
                self.next_session += 1;
                self.pending = Some(Pending::Open {
                    session,
                    deadline: Instant::now() + request.handshake_timeout,
                    request,
                    reply,
                    sent: false,
                    threads: vec![None; self.workers()],
                    failure: None,
                });
            }
            Command::Attach(session) => self.session = Some(session),
            Command::Close { stop, reply } => {
                let message = match (&self.session, stop) {
                    (_, true) => ToRank::Stop,
                    (Some(session), false) => ToRank::Close {
                        session: session.id(),
                    },
                    (None, false) => ToRank::Close { session: 0 },
                };
                self.stopped |= stop;
                self.broadcast(&message);
                self.pending = Some(Pending::Close {
                    reply,
                    waiting: self.workers(),
                });
            }
            Command::Exit { reply } => {
                if let Some(session) = self.session.take() {
                    session.abandon();
                }
                if let Some(Pending::Open { reply, .. }) = self.pending.take() {
                    let _ = reply.send(Err(Error::Mpi("the process is exiting".into())));
                }
                if !self.stopped {
                    self.stopped = true;
                    self.broadcast(&ToRank::Stop);
                }
                self.exits.push(reply);
            }
        }
    }

    fn on_message(&mut self, rank: usize, message: &[u8]) {
        let origin_ok = (1..self.hellos.len()).contains(&rank);
        let decoded = wire::decode::<FromRank>(message);
        let (header, payload) = match decoded {
            Ok(decoded) if origin_ok => decoded,
            Ok(_) => return,
            Err(e) => {
                eprintln!("parexec: ignored a message from rank {rank}: {e}");
                return;
            }
        };
        match header {
            FromRank::Hello {
                version,
                identity,
                host,
                pid,
                cores,
                online,
            } => {
                let identity = identity.filter(|_| version == wire::VERSION);
                self.hellos[rank] = Some(Hello {
                    identity,
                    host,
                    pid,
                    cores,
                    online,
                });
            }
            FromRank::Opened { session, threads } => self.opened(rank, session, Ok(threads)),
            FromRank::OpenFailed { session, message } => self.opened(rank, session, Err(message)),
            header @ (FromRank::Done { .. } | FromRank::Failed { .. }) => {
                if let Some(session) = &self.session {
                    let outbox = &mut self.outbox;
                    let comm = &self.comm;
                    session.on_reply(rank, header, payload, &mut |to, bytes| {
                        outbox.send(comm, to, bytes)
                    });
                }
            }
            FromRank::Closed { .. } => self.closed(),
            FromRank::Bye => {
                self.byes += 1;
                self.closed();
            }
        }
    }

    fn opened(&mut self, rank: usize, id: u64, outcome: Result<u32, String>) {
        if let Some(Pending::Open {
            session,
            threads,
            failure,
            ..
        }) = &mut self.pending
        {
            if *session == id {
                match outcome {
                    Ok(n) => threads[rank - 1] = Some(n),
                    Err(message) => {
                        threads[rank - 1] = Some(0);
                        failure.get_or_insert(format!(
                            "rank {rank} could not start its workers: {message}"
                        ));
                    }
                }
            }
        }
    }

    fn closed(&mut self) {
        if let Some(Pending::Close { waiting, .. }) = &mut self.pending {
            *waiting -= 1;
            if *waiting == 0 {
                if let Some(Pending::Close { reply, .. }) = self.pending.take() {
                    self.session = None;
                    let _ = reply.send(());
                }
            }
        }
    }

    /// Moves a pending open along: checks identities once every rank said hello, sends the
    /// open, and replies once every rank answered or the deadline passed. `true` if it moved.
    fn advance_open(&mut self) -> bool {
        let Some(Pending::Open {
            session,
            request,
            deadline,
            sent,
            threads,
            failure,
            ..
        }) = &mut self.pending
        else {
            return false;
        };
        let outcome = if !*sent {
            match self.hellos.iter().skip(1).position(Option::is_none) {
                None => match check_identities(&self.hellos) {
                    Ok(()) => {
                        *sent = true;
                        let defaults = default_threads(&self.hellos);
                        for (rank, default) in (1..self.hellos.len()).zip(defaults) {
                            let open = ToRank::Open {
                                session: *session,
                                threads: match request.threads {
                                    0 => default,
                                    n => n,
                                },
                                isolation: request.isolation,
                                max_backoff_ns: request.max_backoff.as_nanos() as u64,
                                max_frame: request.max_frame as u64,
                            };
                            self.outbox.send(&self.comm, rank, wire::message(&open));
                        }
                        return true;
                    }
                    Err(e) => Err(e),
                },
                Some(silent) if Instant::now() >= *deadline => Err(Error::Handshake(format!(
                    "rank {} did not say hello within {:?}; does every rank's main call parexec::init() first?",
                    silent + 1,
                    request.handshake_timeout
                ))),
                Some(_) => return false,
            }
        } else if threads.iter().all(Option::is_some) {
            match failure.take() {
                Some(why) => Err(Error::Mpi(why)),
                None => Ok((*session, ranks(&self.hellos, threads))),
            }
        } else if Instant::now() >= *deadline {
            Err(Error::Mpi(format!(
                "the worker ranks did not all start serving within {:?}",
                request.handshake_timeout
            )))
        } else {
            return false;
        };
        let Some(Pending::Open { reply, sent, .. }) = self.pending.take() else {
            return false;
        };
        if outcome.is_err() && sent {
            // Ranks that did open go back to waiting; their `Closed` answers are ignored.
            self.broadcast(&ToRank::Close { session: 0 });
        }
        let _ = reply.send(outcome);
        true
    }
}

/// The worker ranks as the hellos and the answers to an open describe them.
fn ranks(hellos: &[Option<Hello>], threads: &[Option<u32>]) -> Vec<MpiRank> {
    hellos
        .iter()
        .skip(1)
        .zip(threads)
        .enumerate()
        .filter_map(|(i, (hello, threads))| {
            let hello = hello.as_ref()?;
            Some(MpiRank {
                rank: i + 1,
                host: hello.host.clone(),
                pid: hello.pid,
                threads: threads.unwrap_or(0) as usize,
            })
        })
        .collect()
}

/// Each worker rank's default task threads, once every rank said hello.
fn default_threads(hellos: &[Option<Hello>]) -> Vec<u32> {
    let placements: Vec<Placement<'_>> = hellos
        .iter()
        .skip(1)
        .flatten()
        .map(|hello| Placement {
            host: &hello.host,
            cores: hello.cores,
            online: hello.online,
        })
        .collect();
    threads::default_threads(&placements)
}

/// Every rank must run this very build before any code offset is sent to it.
fn check_identities(hellos: &[Option<Hello>]) -> Result<(), Error> {
    let ours = launch::identity()?;
    for (rank, hello) in hellos.iter().enumerate().skip(1) {
        if let Some(hello) = hello {
            if hello.identity != Some(ours) {
                return Err(Error::Handshake(format!(
                    "rank {rank} on host {} runs a different build of the executable (or another parexec version) than rank 0",
                    hello.host
                )));
            }
        }
    }
    Ok(())
}
