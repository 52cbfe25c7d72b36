//! The Amdahl-aware planner: measure a workload, model it, recommend a configuration and
//! explain the recommendation.
//!
//! # Design
//!
//! [`Planner`] gathers the inputs ([`Calibration`] of the machine and executors, a pilot
//! [`WorkloadProfile`], the serial part and the options) and hands them, as plain data, to the
//! cost model in `model`, whose decision becomes a [`Plan`]. A plan predicts; recorded runs
//! ([`Plan::record`]) correct it through a Universal Scalability Law fit, which from then on
//! drives its curve and decision.

mod builder;
mod calibration;
mod laws;
mod model;
mod pilot;
mod plan;
mod report;
mod run;
#[cfg(test)]
mod test;

pub use self::builder::Planner;
pub use self::calibration::Calibration;
pub use self::laws::{UslFit, amdahl, gustafson, imbalance_bound, karp_flatt};
pub use self::model::{ExecutorCosts, Machine, WorkloadProfile};
pub use self::plan::{CurvePoint, Feedback, Limit, Plan};
