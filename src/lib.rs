//! # parexec
//!
//! Python's `concurrent.futures`, done properly in Rust: thread and process pools that return
//! [`Future`]s, a lazy, ordered, memory-bounded [`Map`] that sizes its own chunks,
//! [`as_completed`] and [`wait`].
//!
//! * [`ThreadPool`] runs closures on worker threads; a panicking task fails only its own
//!   future. In a [`ThreadPool::scope`], tasks and maps ([`Scope::map`]) may borrow the
//!   caller's stack.
//! * [`ProcessPool`] runs `fn(A) -> R` tasks with serde payloads in worker processes: a
//!   crash, abort or runaway task fails only the task it was running, and the pool replaces the
//!   worker. Workers serve before `main` runs; [`init`] is optional.
//! * `MpiPool` (cargo feature `mpi`) runs the same tasks on the ranks of an MPI job started by
//!   `mpirun` or `srun`, for work that outgrows one machine; there, call [`init`] first thing
//!   in `main`.
//! * The [`Executor`] trait lets one generic pipeline run on any of these pools.
//! * [`Future<T>`] supports blocking `result`, `result_timeout`, `cancel`, done-callbacks and
//!   `.await`; a map and [`as_completed`] become async streams with `into_stream`
//!   ([`Streaming`]).
//! * Both pools resize while they run (`set_workers`); with the `progress` feature, maps and
//!   `as_completed` draw progress bars (`.progress()`).
//! * [`Planner`] measures a workload and says, before anything runs, whether parallelism pays,
//!   on which executor, with how many workers and what chunk size, and why; the [`planner`]
//!   module holds its inputs and outputs ([`planner::WorkloadProfile`],
//!   [`planner::Calibration`], ...) and the laws alone ([`planner::amdahl`],
//!   [`planner::UslFit`], ...).
//!
//! ```
//! use parexec::{ReturnWhen, ThreadPool, as_completed, wait};
//! use std::time::Duration;
//!
//! fn expensive(n: u64) -> u64 { (0..n).map(|i| i * i).sum() }
//!
//! let pool = ThreadPool::new(2)?;
//! let v = pool.submit(|| expensive(42)).result()?;
//! assert_eq!(v, 23_821);
//!
//! let squares: Vec<u64> = pool
//!     .map(|x: u64| x * x, 0..10_000)
//!     .chunksize(1024)
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(squares[99], 9_801);
//!
//! let futures: Vec<_> = (0..4_u64).map(|n| pool.submit(move || expensive(n))).collect();
//! for done in as_completed(futures) {
//!     done.result()?;
//! }
//!
//! let more: Vec<_> = (0..4_u64).map(|n| pool.submit(move || expensive(n))).collect();
//! let (done, pending) = wait(more, ReturnWhen::AllCompleted, Some(Duration::from_secs(30)));
//! assert_eq!((done.len(), pending.len()), (4, 0));
//! # Ok::<(), parexec::Error>(())
//! ```
//!
//! # Architecture
//!
//! Dependencies point one way: executors depend on the future, the map and the planner's
//! types, never the reverse; the map does not know the planner either (`Map::with_plan` takes
//! [`MapSettings`], which a [`Plan`] converts into).
//!
//! ```text
//! src/
//!   lib.rs          this page and the public surface
//!   future/         Future<T>: shared state and its stages (state.rs), blocking waits (wait.rs)
//!   completion.rs   as_completed, wait
//!   map/            Map: the window of chunks (mod.rs), a chunk's results (chunk.rs), the
//!                   ChunkDispatch interface executors implement (dispatch.rs), in-place output
//!                   for collect_vec beside the Drop it relies on (in_place.rs), collect routed
//!                   to it (collect.rs), MapUnordered (unordered.rs), polling as a stream
//!                   (stream.rs), progress bars (progress.rs, feature `progress`), MapSettings
//!                   that with_plan applies (settings.rs)
//!   stream.rs       Streaming: maps and as_completed as futures_core::Stream
//!   progress.rs     the progress bar a map or as_completed advances (feature `progress`)
//!   chunking.rs     adaptive chunk sizing, and the constants the planner's model shares
//!   cores.rs        Cores: the CPU this process may use (affinity, cgroup quota), one
//!                   definition for both pools' defaults and the planner
//!   executor.rs     the sealed Executor trait, Payload, Stats
//!   thread_pool/    workers over one injector queue: registry, park/wake (sleep.rs), jobs,
//!                   counters, scopes (tasks and maps), map chunks, starting workers and live
//!                   resize (resize.rs)
//!   process/        worker processes: builder, job, dispatch, schedule (pure state),
//!                   supervisor, resize, launch, entry, spawn, worker, protocol, code
//!   mpi/            (feature mpi) MpiPool over MPI ranks: launch, wire, link (rank 0's MPI
//!                   thread), session (dispatch), job, worker (the other ranks), calibrate
//!   planner/        Planner, Plan, calibration, pilot, the cost model, laws, report, run
//!   launch.rs       init(): which role this process plays (pool worker, MPI rank, program)
//!   unwind.rs       panic capture: payload to message, location hook (installed once)
//!   error.rs        Error, WorkerExit
//! ```
//!
//! A future is resolved through its producer side, a `Promise`, by whichever executor runs the
//! task; a thread-pool task carries its future's state in its own allocation. A thread blocked
//! on a future runs the help hook its executor registered (thread-pool workers run queued jobs),
//! so a task may wait for a task it submitted. `Map` drives an executor only through
//! `ChunkDispatch`: one job per chunk on threads, one frame each way for processes. The planner
//! measures the executors and returns a [`Plan`]; pools never read what the planner measured: a
//! thread pool's chunk overhead is a builder option
//! ([`ThreadPoolBuilder::chunk_overhead`]), a process pool measures its own. Each folder has a
//! `README.md` with its design notes: the park/wake protocol and lock order of the thread pool,
//! the frame format and protocol of the process pool, the MPI pool's messages, back-off and
//! shutdown, the planner's cost model, the map's in-place output.
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod chunking;
#[cfg(doctest)]
mod compile_fail;
mod completion;
mod cores;
// The integration tests' filter for deliberate panics, whose items are `pub` for them.
#[cfg(test)]
#[allow(unreachable_pub)]
#[path = "../tests/support/deliberate.rs"]
mod deliberate;
mod error;
mod executor;
mod future;
mod launch;
mod map;
#[cfg(feature = "mpi")]
mod mpi;
pub mod planner;
mod process;
mod progress;
mod stream;
mod sync;
mod thread_pool;
mod unwind;

pub use crate::completion::{
    AsCompleted, AsCompletedTimeout, ReturnWhen, as_completed, as_completed_timeout, wait,
};
pub use crate::cores::Cores;
pub use crate::error::{Error, WorkerExit};
pub use crate::executor::{Executor, ExecutorKind, Payload, Stats};
pub use crate::future::Future;
pub use crate::launch::init;
pub use crate::map::{Map, MapSettings, MapUnordered, Scoped, Unscoped};
#[cfg(feature = "mpi")]
pub use crate::mpi::{MpiPool, MpiPoolBuilder, MpiRank};
pub use crate::planner::{Plan, Planner};
pub use crate::process::{ProcessPool, ProcessPoolBuilder};
pub use crate::stream::Streaming;
pub use crate::thread_pool::{Scope, ThreadPool, ThreadPoolBuilder};
