//! Snapshots of the report for representative plans built from injected numbers.

use std::time::Duration;

use super::*;
use crate::planner::model::Options;
use crate::planner::test::{costs, example_workload};
use crate::planner::{ExecutorCosts, Machine, WorkloadProfile};

/// Only the thread pool is a candidate.
fn threads() -> Vec<ExecutorCosts> {
    costs()[..1].to_vec()
}

/// Only the process pool is a candidate.
fn processes() -> Vec<ExecutorCosts> {
    costs()[1..].to_vec()
}

fn plan_on(workload: WorkloadProfile, machine: Machine, costs: Vec<ExecutorCosts>) -> Plan {
    Plan::from_model(workload, machine, costs, Options::default()).unwrap()
}

#[test]
fn a_cpu_bound_parallel_plan() {
    let plan = plan_on(example_workload(), Machine::with_cores(2), costs());
    assert_eq!(
        plan.to_string(),
        "workload: 1,000,000 items, 38.0 µs/item (coefficient of variation 0.40), 0.30% of the \
         time waiting, largest item 200 µs, serial part 450 ms\n\
         executor: threads x2, chunksize 648 (≈ 24.6 ms per chunk; overhead 0.03%)\n\
         predicted speedup: 1w 1.00x | 2w 1.98x | 4w 3.86x* | 8w 7.38x* | 16w 13.6x*   \
         (* beyond this machine's 2 cores: modelled on a machine with that many cores)\n\
         limit: the 2 usable cores, all kept busy; serial part 1.2% of the work (Amdahl bound \
         85.4x); pool start-up 120 µs\n\
         decision: parallel: 1.98x on 2 cores is 0.99x per core (at least 0.80x needed)"
    );
}

#[test]
fn an_io_bound_plan_speaks_of_speedup_per_core() {
    let mut calls = WorkloadProfile::uniform(100, Duration::from_millis(70));
    calls.cpu_share = 0.009;
    calls.cv = 0.4;
    calls.largest_item = Duration::from_millis(133);
    let plan = plan_on(calls, Machine::with_cores(2), threads());
    assert_eq!(
        plan.to_string(),
        "workload: 100 items, 70.0 ms/item (coefficient of variation 0.40), 99.1% of the time \
         waiting, largest item 133 ms\n\
         executor: threads x62, chunksize 1 (≈ 70.0 ms per chunk; overhead 0.01%)\n\
         predicted speedup: 1w 1.00x | 2w 2.00x | 4w 3.98x | 8w 7.69x | 16w 14.3x | 62w 36.4x\n\
         limit: uneven items: largest item 1.9% of the work (bound 52.6x); pool start-up 3.72 ms\n\
         decision: parallel: 36.4x on 2 cores is 18.22x per core (at least 0.80x needed); the \
         threads wait 99.1% of the time, so more threads than cores pay"
    );
}

#[test]
fn a_serial_plan_names_its_best_parallel_option() {
    let mut files = WorkloadProfile::uniform(3, Duration::from_millis(400));
    files.largest_item = Duration::from_millis(900);
    files.largest_position = 0.0;
    files.cv = 0.9;
    files.cpu_share = 0.2;
    let plan = plan_on(files, Machine::with_cores(8), threads());
    assert_eq!(
        plan.to_string(),
        "workload: 3 items, 400 ms/item (coefficient of variation 0.90), 80.0% of the time \
         waiting, largest item 900 ms\n\
         executor: serial, on the calling thread; the best parallel option would be threads x2, \
         chunksize 1 (≈ 400 ms per chunk; overhead 0.00%)\n\
         predicted speedup: 1w 1.00x | 2w 1.33x | 4w 1.33x | 8w 1.33x | 16w 1.33x*   \
         (* beyond this machine's 8 cores: modelled on a machine with that many cores)\n\
         limit: uneven items: largest item 75.0% of the work (bound 1.33x); pool start-up 120 µs\n\
         decision: serial: 1.33x on 2 cores is only 0.67x per core (at least 0.80x needed)"
    );
}

#[test]
fn a_process_plan_counts_the_bytes_it_moves() {
    let mut w = WorkloadProfile::uniform(20_000, Duration::from_millis(2));
    w.payload_bytes = 4096.0;
    w.cv = 0.1;
    w.largest_item = Duration::from_millis(3);
    let plan = plan_on(w, Machine::with_cores(2), processes());
    assert_eq!(
        plan.to_string(),
        "workload: 20,000 items, 2.00 ms/item (coefficient of variation 0.10), 0.0% of the time \
         waiting, largest item 3.00 ms, 4,096 bytes sent to and from a worker per item\n\
         executor: processes x2, chunksize 37 (≈ 74.0 ms per chunk; overhead 0.09%)\n\
         predicted speedup: 1w 1.00x | 2w 1.99x | 4w 3.97x* | 8w 7.91x* | 16w 15.7x*   \
         (* beyond this machine's 2 cores: modelled on a machine with that many cores)\n\
         limit: the 2 usable cores, all kept busy; pool start-up 4.00 ms\n\
         decision: parallel: 1.99x on 2 cores is 0.99x per core (at least 0.80x needed)"
    );
}

#[test]
fn slow_cores_are_named_instead_of_small_losses() {
    let mut machine = Machine::with_cores(2);
    machine.core_efficiency = 0.63;
    let report = plan_on(example_workload(), machine, threads()).to_string();
    let lines: Vec<&str> = report.lines().skip(3).collect();
    assert_eq!(
        lines,
        [
            "limit: the usable cores: 2 cores busy at once do the work of 1.63 (measured core \
             efficiency 0.63); serial part 1.2% of the work (Amdahl bound 85.4x); pool start-up \
             120 µs",
            "decision: parallel: 1.62x on 2 cores is 0.81x per core (at least 0.80x needed)",
        ]
    );
}

#[test]
fn load_from_elsewhere_is_said_in_words() {
    let mut machine = Machine::with_cores(2);
    machine.busy_elsewhere = 0.4;
    machine.free_cores = 1.2;
    let report = plan_on(example_workload(), machine, threads()).to_string();
    let lines: Vec<&str> = report.lines().skip(3).collect();
    assert_eq!(
        lines,
        [
            "limit: the usable cores: other processes leave 1.2 of 2 cores free; serial part \
             1.2% of the work (Amdahl bound 85.4x); pool start-up 120 µs",
            "machine: other processes used 40% of the CPU during calibration; the plan assumes \
             1.2 free cores",
            "decision: serial: 1.20x on 2 cores is only 0.60x per core (at least 0.80x needed)",
        ]
    );
}

#[test]
fn a_decision_at_the_threshold_prints_the_digits_that_decide_it() {
    let efficiency = plan_on(example_workload(), Machine::with_cores(2), threads()).efficiency;
    let options = Options {
        threshold: efficiency + 1e-4,
        ..Options::default()
    };
    let plan = Plan::from_model(
        example_workload(),
        Machine::with_cores(2),
        threads(),
        options,
    );
    let report = plan.unwrap().to_string();
    assert_eq!(
        report.lines().last(),
        Some(
            "decision: serial: 1.9752x on 2 cores is only 0.9876x per core (at least 0.9877x needed)"
        )
    );
}

#[test]
fn a_pool_slower_than_the_calling_thread_says_why() {
    let plan = plan_on(
        WorkloadProfile::uniform(200, Duration::from_nanos(500)),
        Machine::with_cores(2),
        threads(),
    );
    assert_eq!(
        plan.to_string().lines().last(),
        Some(
            "decision: serial: a pool would be slower (0.55x): pool start-up costs more than it saves"
        )
    );
}

#[test]
fn a_fitted_curve_says_how_many_runs_it_rests_on() {
    let mut plan = plan_on(example_workload(), Machine::with_cores(2), threads());
    plan.record_serial(Duration::from_secs(40));
    plan.record(2, Duration::from_secs(25)).unwrap();
    let report = plan.to_string();
    assert_eq!(
        report.lines().nth(2),
        Some(
            "predicted speedup (fitted to 1 recorded run): 1w 1.00x | 2w 1.60x | 4w 2.29x* | \
              8w 2.91x* | 16w 3.37x*   (* beyond this machine's 2 cores: modelled on a machine \
              with that many cores)"
        )
    );
}

#[test]
fn a_plan_past_the_knee_says_why() {
    let mut mixed = WorkloadProfile::uniform(300, Duration::from_micros(1300));
    mixed.cpu_share = 0.3 / 1.3;
    let plan = plan_on(mixed, Machine::with_cores(2), threads());
    assert_eq!(
        plan.to_string().lines().last(),
        Some(
            "decision: parallel: 8.44x on 2 cores is 4.22x per core (at least 0.80x needed); \
             the threads wait 76.9% of the time, so more threads than cores pay; at the knee, \
             8.7 threads, bursts of computing bunch up and the cores would be busy 86.9% of the \
             time, on 15 threads 99.6%"
        )
    );
}
