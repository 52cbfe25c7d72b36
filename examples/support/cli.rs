//! Command-line pieces that more than one pipeline takes.

use clap::ValueEnum;
use parexec::{ExecutorKind, Plan};

/// Which executors the planner may choose from (`--executor`). The planner still decides
/// whether parallelism pays at all, how many workers and what chunk size.
///
/// A new executor (say MPI, behind its cargo feature) is one more variant here and one more
/// arm in [`ExecutorChoice::kinds`]; the pipelines take the list, not the variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ExecutorChoice {
    /// Let the planner pick threads or processes.
    #[default]
    Auto,
    /// Worker threads in this process.
    Threads,
    /// Worker processes running this executable (crash isolation).
    Processes,
    /// The other ranks of the MPI job this program was started in by mpirun or srun (a build
    /// with `--features mpi`).
    #[cfg(feature = "mpi")]
    Mpi,
}

impl ExecutorChoice {
    /// The executor kinds to hand to `Planner::executors`.
    pub fn kinds(self) -> Vec<ExecutorKind> {
        match self {
            ExecutorChoice::Auto => vec![ExecutorKind::Threads, ExecutorKind::Processes],
            ExecutorChoice::Threads => vec![ExecutorKind::Threads],
            ExecutorChoice::Processes => vec![ExecutorKind::Processes],
            #[cfg(feature = "mpi")]
            ExecutorChoice::Mpi => vec![ExecutorKind::Mpi],
        }
    }
}

/// Applies `--workers`: the user's worker count overrides the plan's, and the run is parallel
/// on the plan's executor kind (the best parallel option it found) whatever it decided.
pub fn override_workers(plan: &mut Plan, workers: Option<usize>) {
    if let Some(workers) = workers {
        plan.parallel = true;
        plan.workers = workers;
        plan.parallel_workers = workers;
    }
}

/// Parses an efficiency threshold: a number in (0, 1].
pub fn threshold(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if value > 0.0 && value <= 1.0 => Ok(value),
        _ => Err(format!("expected a number in (0, 1], got {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_offers_every_kind_and_the_others_one() {
        assert_eq!(ExecutorChoice::Auto.kinds().len(), 2);
        assert_eq!(ExecutorChoice::Threads.kinds(), [ExecutorKind::Threads]);
        assert_eq!(ExecutorChoice::Processes.kinds(), [ExecutorKind::Processes]);
        assert_eq!(
            ExecutorChoice::from_str("processes", true),
            Ok(ExecutorChoice::Processes)
        );
    }

    #[test]
    fn workers_override_a_serial_decision() {
        let items: Vec<u32> = (0..1000).collect();
        let mut plan = parexec::Planner::new()
            .pilot(&items, |x: u32| x + 1)
            .plan()
            .unwrap();
        assert!(!plan.parallel, "nanoseconds per item never repay a pool");
        override_workers(&mut plan, None);
        assert!(!plan.parallel);
        override_workers(&mut plan, Some(3));
        assert!(plan.parallel && plan.workers == 3);
        let out: Vec<u32> = plan
            .map(|x: u32| x * 2, items)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(out[999], 1998);
    }

    #[test]
    fn thresholds_outside_zero_to_one_are_refused() {
        assert_eq!(threshold("0.8"), Ok(0.8));
        for bad in ["0", "1.5", "-1", "NaN", "x"] {
            assert!(threshold(bad).is_err(), "{bad}");
        }
    }
}
