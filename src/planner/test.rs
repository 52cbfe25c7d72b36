use std::time::Duration;

use super::model::Options;
use super::*;
use crate::{Error, ExecutorKind};

/// Thread and process costs, in that order (shared with the report's snapshots).
pub(super) fn costs() -> Vec<ExecutorCosts> {
    let threads = ExecutorCosts::new(
        ExecutorKind::Threads,
        Duration::from_micros(60),
        Duration::from_micros(8),
    );
    let mut processes = ExecutorCosts::new(
        ExecutorKind::Processes,
        Duration::from_millis(2),
        Duration::from_micros(70),
    );
    processes.transfer_ns_per_byte = 1.5;
    vec![threads, processes]
}

/// A CPU-bound workload of a million small items with a serial part.
pub(super) fn example_workload() -> WorkloadProfile {
    let mut w = WorkloadProfile::uniform(1_000_000, Duration::from_micros(38));
    w.cv = 0.4;
    w.cpu_share = 0.997;
    w.largest_item = Duration::from_micros(200);
    w.serial = Duration::from_millis(450);
    w.payload_bytes = 64.0;
    w
}

fn plan(workload: WorkloadProfile, cores: usize) -> Plan {
    Plan::from_model(
        workload,
        Machine::with_cores(cores),
        costs(),
        Options::default(),
    )
    .unwrap()
}

#[test]
fn plain_fields_carry_the_report() {
    let plan = plan(example_workload(), 2);
    assert!(plan.parallel);
    assert_eq!(
        (plan.kind, plan.workers, plan.chunksize),
        (ExecutorKind::Threads, 2, 648)
    );
    assert_eq!(plan.limit, Limit::Cores);
    assert_eq!(plan.curve.len(), 5);
    assert!(plan.curve.iter().all(|p| p.modelled == (p.workers > 2)));
    assert!((plan.serial_share - 0.45 / 38.45).abs() < 1e-9);
    assert!((plan.amdahl_bound - 38.45 / 0.45).abs() < 1e-6);
    assert!((plan.imbalance_bound - 38.0 / 200e-6).abs() < 1e-3);
}

#[test]
fn waiting_work_adds_the_chosen_worker_count_to_the_curve() {
    let mut calls = WorkloadProfile::uniform(100, Duration::from_millis(200));
    calls.cpu_share = 0.02;
    let plan = plan(calls, 2);
    assert!(plan.parallel && plan.workers > 16, "{plan}");
    // Those threads run on this machine: the curve shows the plan's own figure, unstarred,
    // and a recorded run is compared with that same figure.
    let chosen = plan
        .curve
        .iter()
        .find(|p| p.workers == plan.workers)
        .copied();
    assert_eq!(
        chosen.map(|p| (p.speedup, p.modelled)),
        Some((plan.speedup, false))
    );
    let (mut plan, predicted) = (plan, chosen.unwrap().speedup);
    plan.record_serial(Duration::from_secs(25));
    let feedback = plan.record(plan.workers, Duration::from_secs(1)).unwrap();
    assert_eq!(feedback.predicted_speedup, predicted);
}

#[test]
fn empty_input_and_no_executor_are_errors() {
    let none = WorkloadProfile::uniform(0, Duration::from_millis(1));
    assert!(matches!(
        Plan::from_model(none, Machine::with_cores(2), costs(), Options::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        Plan::from_model(
            example_workload(),
            Machine::with_cores(2),
            Vec::new(),
            Options::default()
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn feedback_reports_error_and_serial_fraction_then_refits() {
    // The model expects about 1.98x on 2 workers; the run shows 1.7x.
    let mut plan = plan(example_workload(), 2);
    let serial = Duration::from_secs(40);
    plan.record_serial(serial);
    let measured = serial.div_f64(1.7);
    let feedback = plan.record(2, measured).unwrap();
    assert!((feedback.measured_speedup - 1.7).abs() < 1e-9);
    assert!(
        feedback.predicted_speedup > 1.9 && feedback.error > 0.1,
        "{feedback:?}"
    );
    let e = (1.0 / 1.7 - 0.5) / 0.5;
    assert!((feedback.serial_fraction.unwrap() - e).abs() < 1e-9);
    // The refit is Amdahl with that serial fraction; 0.85 efficiency stays parallel.
    assert!(
        (feedback.fit.b - 40.0 * e).abs() < 1e-6 && feedback.fit.c == 0.0,
        "{feedback:?}"
    );
    assert!((plan.speedup - 1.7).abs() < 1e-9 && plan.parallel);
    let eight = plan.curve.iter().find(|p| p.workers == 8).unwrap();
    assert!((eight.speedup - 1.0 / (e + (1.0 - e) / 8.0)).abs() < 1e-6);
    // A second, slower run pulls the fit below the threshold.
    plan.record(2, serial.div_f64(1.4)).unwrap();
    assert!(!plan.parallel, "{plan}");
    assert!(plan.record(0, measured).is_err());
    assert!(plan.record(2, Duration::ZERO).is_err());
}
