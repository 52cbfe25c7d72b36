//! # parexec
//!
//! Python's `concurrent.futures`, done properly in Rust: thread and process pools that return
//! [`Future`]s, a lazy, ordered, memory-bounded [`Map`] that sizes its own chunks,
//! [`as_completed`] and [`wait`].
//!
//! * [`ThreadPool`] runs closures on worker threads; a panicking task fails only its own
//!   future.
//! * [`ProcessPool`] runs `fn(A) -> R` tasks with serde payloads in worker processes: a
//!   crash, abort or runaway task fails only the task it was running, and the pool replaces the
//!   worker. Call [`init`] first thing in `main`.
//! * The [`Executor`] trait lets one generic pipeline run on either pool.
//! * [`Future<T>`] supports blocking `result`, `result_timeout`, `cancel`, done-callbacks and
//!   `.await`.
//! * [`Planner`] measures a workload and says, before anything runs, whether parallelism pays,
//!   on which executor, with how many workers and what chunk size, and why; [`amdahl`],
//!   [`gustafson`], [`karp_flatt`] and [`UslFit`] are there for the math alone.
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
#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]

mod chunking;
mod completion;
mod error;
mod executor;
mod future;
mod map;
pub mod planner;
mod process;
mod thread_pool;
mod unwind;

pub use crate::completion::{
    AsCompleted, AsCompletedTimeout, ReturnWhen, as_completed, as_completed_timeout, wait,
};
pub use crate::error::{Error, WorkerExit};
pub use crate::executor::{Executor, ExecutorKind, Payload, Stats};
pub use crate::future::Future;
pub use crate::map::{Map, MapUnordered};
pub use crate::planner::{Plan, Planner};
pub use crate::process::{ProcessPool, ProcessPoolBuilder, init};
pub use crate::thread_pool::{Scope, ThreadPool, ThreadPoolBuilder};
