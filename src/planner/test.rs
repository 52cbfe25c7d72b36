use std::time::Duration;

use super::model::Options;
use super::*;
use crate::{Error, ExecutorKind};

fn costs() -> Vec<ExecutorCosts> {
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

fn example_workload() -> WorkloadProfile {
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
fn report_snapshot() {
    let plan = plan(example_workload(), 2);
    assert_eq!(
        plan.to_string(),
        "workload: 1,000,000 items, 38.0 µs/item (cv 0.4), 0.30% of the time waiting, \
         largest item 200 µs, serial part 450 ms, 64 bytes moved per item\n\
         executor: threads x2, chunksize 648 (≈ 24.6 ms per chunk; overhead 0.03%)\n\
         predicted speedup: 1w 1.00x | 2w 1.98x | 4w 3.86x* | 8w 7.38x* | 16w 13.6x*   \
         (* beyond this machine's 2 cores: modelled)\n\
         limit: the 2 usable cores (work spread evenly, losses under 5%); \
         serial part 1.2% of the work (Amdahl bound 85.4x); pool start-up 120 µs\n\
         decision: parallel (efficiency 0.99 >= 0.80)"
    );
}

#[test]
fn report_snapshot_of_a_serial_decision() {
    let mut files = WorkloadProfile::uniform(3, Duration::from_millis(400));
    files.largest_item = Duration::from_millis(900);
    files.largest_position = 0.0;
    files.cv = 0.9;
    files.cpu_share = 0.2;
    let plan = plan(files, 8);
    assert_eq!(
        plan.to_string(),
        "workload: 3 items, 400 ms/item (cv 0.9), 80.0% of the time waiting, largest item 900 ms\n\
         executor: serial, on the calling thread (best parallel option: threads x2, chunksize 1 \
         (≈ 400 ms per chunk; overhead 0.00%))\n\
         predicted speedup: 1w 1.00x | 2w 1.33x | 4w 1.33x | 8w 1.33x | 16w 1.33x*   \
         (* beyond this machine's 8 cores: modelled)\n\
         limit: uneven items: largest item 75.0% of the work (bound 1.33x); pool start-up 120 µs\n\
         decision: serial (efficiency 0.67 < 0.80)"
    );
}

#[test]
fn a_serial_report_names_what_makes_a_pool_slower() {
    let plan = plan(WorkloadProfile::uniform(200, Duration::from_nanos(500)), 2);
    assert!(!plan.parallel && plan.speedup < 1.0);
    assert_eq!(plan.limit, Limit::StartUp);
    let report = plan.to_string();
    let decision = report.lines().last().unwrap();
    assert!(
        decision.starts_with("decision: serial (a pool would be slower, 0.")
            && decision.ends_with(": pool start-up costs more than it saves)"),
        "{report}"
    );
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
    assert!(
        plan.curve
            .iter()
            .any(|p| p.workers == plan.workers && p.modelled)
    );
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
