//! The Amdahl-aware planner: measure a workload, model it, recommend a configuration and
//! explain the recommendation.
//!
//! [`Planner`] gathers the inputs ([`Calibration`] of the machine and executors, a pilot or a
//! given [`WorkloadProfile`], the serial part and the options) and hands them, as plain data, to
//! a cost model whose decision becomes a [`Plan`]. A plan predicts; recorded runs
//! ([`Plan::record`]) correct it through a Universal Scalability Law fit ([`UslFit`]), which
//! from then on drives its curve and decision. The laws are here for the math alone:
//! [`amdahl`], [`gustafson`], [`karp_flatt`], [`imbalance_bound`].
//!
//! [`Planner`] and [`Plan`] are also exported at the crate root; the design notes are in this
//! module's `README.md`.
//!
//! ```
//! use std::time::Duration;
//! use parexec::planner::{Machine, WorkloadProfile, amdahl};
//! use parexec::Planner;
//!
//! // 95% parallel work on 8 cores: at most 5.9x.
//! assert!((amdahl(0.95, 8.0)? - 5.925).abs() < 1e-3);
//!
//! let profile = WorkloadProfile::uniform(100_000, Duration::from_micros(200));
//! let plan = Planner::new().profile(profile).machine(Machine::with_cores(4)).plan()?;
//! assert!(plan.parallel && plan.workers == 4, "{plan}");
//! # Ok::<(), parexec::Error>(())
//! ```

mod builder;
mod calibration;
mod laws;
mod model;
mod pilot;
mod plan;
#[cfg(feature = "plot")]
mod plot;
mod report;
mod run;
#[cfg(test)]
mod test;

pub use self::builder::Planner;
pub use self::calibration::Calibration;
pub use self::laws::{UslFit, amdahl, gustafson, imbalance_bound, karp_flatt};
pub use self::model::{ExecutorCosts, Machine, WorkloadProfile};
pub use self::plan::{CurvePoint, Feedback, Limit, Plan};
