use std::time::Duration;

use super::inputs::SMT_YIELD;
use super::*;

fn threads() -> ExecutorCosts {
    ExecutorCosts::new(
        ExecutorKind::Threads,
        Duration::from_micros(50),
        Duration::from_micros(5),
    )
}

fn processes() -> ExecutorCosts {
    let mut costs = ExecutorCosts::new(
        ExecutorKind::Processes,
        Duration::from_millis(3),
        Duration::from_micros(60),
    );
    costs.transfer_ns_per_byte = 2.0;
    costs
}

fn model<'a>(p: &'a WorkloadProfile, m: &'a Machine, c: &'a ExecutorCosts) -> CostModel<'a> {
    CostModel {
        profile: p,
        machine: m,
        costs: c,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

#[test]
fn prediction_terms_match_hand_computed_values() {
    // 1000 items of 1 ms on 2 workers, chunks of 10, 5 µs overhead, 50 µs start-up each.
    let p = WorkloadProfile::uniform(1000, Duration::from_millis(1));
    let m = Machine::with_cores(2);
    let t = threads();
    let pred = model(&p, &m, &t).predict(2, 10);
    assert!(close(pred.work, 0.5));
    assert!(close(pred.overhead, 100.0 * 5e-6 / 2.0));
    // 100 equal chunks split evenly over 2 workers: no tail.
    assert!(close(pred.tail, 0.0));
    assert!(close(pred.startup, 100e-6));
    // Even items: the largest chunk (10 ms) holds nobody up.
    assert!(close(pred.imbalance, 0.5));
    assert!(close(pred.total(), 100e-6 + 0.5 + 250e-6));
    // 995 items: 99 chunks of 10 and one of 5; one worker runs 50 full chunks (500 items)
    // while the other runs 49 and the short one (495).
    let odd = WorkloadProfile::uniform(995, Duration::from_millis(1));
    assert!(close(model(&odd, &m, &t).predict(2, 10).tail, 2.5e-3));
    // 60 items in chunks of 7 on 2 workers: 8 full chunks, 4 each, and the short chunk of 4
    // after them: 32 items against an even 30.
    let short = WorkloadProfile::uniform(60, Duration::from_millis(1));
    assert!(close(model(&short, &m, &t).predict(2, 7).tail, 2e-3));
    // Varying items end at random: half a chunk apart, scaled by the variation.
    let mut varied = p.clone();
    varied.cv = 0.5;
    assert!(close(
        model(&varied, &m, &t).predict(2, 10).tail,
        0.5 * 10e-3 / 2.0 * 0.5
    ));
}

#[test]
fn a_long_chunk_at_the_head_stalls_the_ordered_window() {
    // 49 items of 2 ms after one of 294 ms, chunks of 1, 2 workers: the other worker
    // finishes only the 7 chunks of the window while the long one runs.
    let mut p = WorkloadProfile::uniform(50, Duration::from_micros(7840));
    p.largest_item = Duration::from_millis(294);
    p.largest_position = 0.0;
    let m = Machine::with_cores(2);
    let t = threads();
    let pred = model(&p, &m, &t).predict(2, 1);
    assert!(
        close(pred.imbalance, 0.294 + (0.098 - 7.0 * 0.002) / 2.0),
        "{pred:?}"
    );
}

#[test]
fn cpu_bound_work_does_not_scale_past_the_cores() {
    let p = WorkloadProfile::uniform(1000, Duration::from_millis(1));
    let m = Machine::with_cores(2);
    let t = threads();
    let pred = model(&p, &m, &t).predict(4, 10);
    assert!(
        close(pred.work, 0.5),
        "4 workers on 2 cores still need 0.5 s"
    );
}

#[test]
fn smt_siblings_count_partly() {
    let mut m = Machine::with_cores(4);
    m.physical_cores = 2;
    assert!(close(m.capacity(1), 1.0));
    assert!(close(m.capacity(2), 2.0));
    assert!(close(m.capacity(4), 2.0 + 2.0 * SMT_YIELD));
    assert!(close(m.capacity(16), 2.0 + 2.0 * SMT_YIELD));
    m.core_efficiency = 0.9;
    assert!(close(m.capacity(1), 1.0));
    assert!(close(m.capacity(2), 1.9));
    assert!(close(m.capacity(4), 1.0 + 0.9 * (1.0 + 2.0 * SMT_YIELD)));
}

#[test]
fn transfer_costs_count_on_both_sides() {
    let mut p = WorkloadProfile::uniform(1000, Duration::from_micros(10));
    p.payload_bytes = 5000.0; // 10 µs of transfer per item at 2 ns per byte
    let m = Machine::with_cores(2);
    let c = processes();
    let pred = model(&p, &m, &c).predict(2, 100);
    assert!(close(pred.work, 1000.0 * 20e-6 / 2.0));
    assert!(close(pred.transfer, 1000.0 * 10e-6));
}

#[test]
fn chunk_size_is_the_analytic_optimum_when_no_clamp_binds() {
    // c* = sqrt(2 n o / (mu (N - 1))) = sqrt(2 * 1e6 * 5e-6 / 1e-6) = 3162
    let p = WorkloadProfile::uniform(1_000_000, Duration::from_micros(1));
    let m = Machine::with_cores(2);
    let t = threads();
    assert_eq!(model(&p, &m, &t).chunksize(2), 3162);
}

#[test]
fn chunk_size_clamps() {
    let m = Machine::with_cores(2);
    let t = threads();
    // Balance: 100 items of 10 ms on 2 workers: at most 100 / 8 = 12 per chunk.
    let slow = WorkloadProfile::uniform(100, Duration::from_millis(10));
    assert!(model(&slow, &m, &t).chunksize(2) <= 12);
    // Progress: 1e6 items of 1 ms: a chunk must not exceed 1 s.
    let long = WorkloadProfile::uniform(1_000_000, Duration::from_millis(1));
    assert!(model(&long, &m, &t).chunksize(2) <= 1000);
    // Overhead: items of 0.1 µs with 5 µs overhead need at least 500 per chunk, even if
    // that leaves fewer than 4 chunks per worker.
    let tiny = WorkloadProfile::uniform(2000, Duration::from_nanos(100));
    assert_eq!(model(&tiny, &m, &t).chunksize(2), 500);
    // Never more than one worker's share, never zero.
    let few = WorkloadProfile::uniform(3, Duration::from_nanos(1));
    assert_eq!(model(&few, &m, &t).chunksize(2), 2);
    let none = WorkloadProfile::uniform(0, Duration::from_millis(1));
    assert_eq!(model(&none, &m, &t).chunksize(2), 1);
}

#[test]
fn waiting_work_gets_more_threads() {
    let mut p = WorkloadProfile::uniform(1000, Duration::from_millis(10));
    p.cpu_share = 0.05; // wait / compute = 19
    let m = Machine::with_cores(2);
    let t = threads();
    // The knee is 40 threads; past it, until the cores are predicted busy 99.5% of the time.
    assert_eq!(model(&p, &m, &t).max_workers(64), 53);
    assert_eq!(model(&p, &m, &t).max_workers(16), 16);
    p.cpu_share = 0.0;
    assert_eq!(model(&p, &m, &t).max_workers(64), 64);
    p.cpu_share = 1.0;
    assert_eq!(model(&p, &m, &t).max_workers(64), 2);
}

/// 300 items that wait 1 ms and then compute 300 µs, on 2 cores.
fn mixed() -> WorkloadProfile {
    let mut p = WorkloadProfile::uniform(300, Duration::from_micros(1300));
    p.cpu_share = 0.3 / 1.3;
    p
}

#[test]
fn mixed_work_gets_threads_well_past_the_knee() {
    let p = mixed();
    let m = Machine::with_cores(2);
    let t = threads();
    let d = decide(&p, &m, std::slice::from_ref(&t), &Options::default());
    // The knee is 2 × 1.3 / 0.3 = 8.7 threads; there the cores are still idle 13% of the
    // time, and the plan takes the fewest threads within 1% of the fastest.
    assert!(d.parallel);
    assert!((12..=18).contains(&d.best.workers), "{d:?}");
    let curve = model(&p, &m, &t);
    let fastest = (1..=64)
        .map(|w| curve.best_for(w).total())
        .fold(f64::INFINITY, f64::min);
    assert!(
        d.best.total() <= fastest * 1.01,
        "regret on the modelled curve"
    );
    let at_knee = curve.best_for(9).total();
    assert!(at_knee > fastest * 1.1, "the knee itself loses over 10%");
}

#[test]
fn nearly_cpu_bound_work_keeps_one_thread_per_core() {
    // 3% waiting (page faults, a log line): a third thread would gain under 5%.
    let mut p = WorkloadProfile::uniform(10_000, Duration::from_micros(100));
    p.cpu_share = 0.97;
    let d = decide(
        &p,
        &Machine::with_cores(2),
        &[threads()],
        &Options::default(),
    );
    assert_eq!(d.best.workers, 2, "{d:?}");
}

#[test]
fn decides_parallel_threads_for_large_uniform_cpu_work() {
    let p = WorkloadProfile::uniform(100_000, Duration::from_micros(100));
    let d = decide(
        &p,
        &Machine::with_cores(2),
        &[threads(), processes()],
        &Options::default(),
    );
    assert!(d.parallel);
    assert_eq!((d.best.kind, d.best.workers), (ExecutorKind::Threads, 2));
    assert!(d.speedup > 1.9 && d.efficiency > 0.95, "{d:?}");
}

#[test]
fn decides_serial_for_tiny_work() {
    let p = WorkloadProfile::uniform(200, Duration::from_nanos(500));
    let d = decide(
        &p,
        &Machine::with_cores(2),
        &[threads()],
        &Options::default(),
    );
    assert!(!d.parallel, "{d:?}");
    assert!(d.speedup < 1.0);
}

#[test]
fn decides_serial_below_the_efficiency_threshold() {
    // 30% of the time outside the map: Amdahl gives at most 1.54x on 2 cores (eff 0.77).
    let mut p = WorkloadProfile::uniform(10_000, Duration::from_micros(70));
    p.serial = Duration::from_millis(300);
    let m = Machine::with_cores(2);
    let d = decide(&p, &m, &[threads()], &Options::default());
    assert!(
        !d.parallel && d.speedup > 1.4 && d.efficiency < 0.8,
        "{d:?}"
    );
    let lenient = Options {
        threshold: 0.7,
        ..Options::default()
    };
    assert!(decide(&p, &m, &[threads()], &lenient).parallel);
}

#[test]
fn decides_serial_when_one_item_dominates() {
    // Three files, one 3x the other two combined: at most a 25% saving.
    let mut p = WorkloadProfile::uniform(3, Duration::from_millis(400));
    p.largest_item = Duration::from_millis(900);
    p.largest_position = 0.0;
    p.cv = 0.9;
    let d = decide(
        &p,
        &Machine::with_cores(8),
        &[threads()],
        &Options::default(),
    );
    assert!(!d.parallel, "{d:?}");
    assert!(d.speedup <= 1.0 / 0.75 + 1e-9);
}

#[test]
fn waiting_work_goes_parallel_beyond_the_cores() {
    let mut p = WorkloadProfile::uniform(100, Duration::from_millis(200));
    p.cpu_share = 0.02;
    let m = Machine::with_cores(8);
    let d = decide(&p, &m, &[threads()], &Options::default());
    assert!(
        d.parallel && d.best.workers > 8 && d.speedup > 10.0,
        "{d:?}"
    );
}

#[test]
fn prefers_fewer_workers_within_the_margin() {
    // A long serial part: 16 items of 100 ms take 6 rounds on 3 workers and 4 on 4, so 4
    // workers gain under 5% over 3 (5.4 s against 5.6 s), 3 gain 3.6% over 2 (5.8 s) but
    // are within 5% of the fastest, and 2 are not.
    let mut p = WorkloadProfile::uniform(16, Duration::from_millis(100));
    p.serial = Duration::from_secs(5);
    let m = Machine::with_cores(4);
    let d = decide(&p, &m, &[threads()], &Options::default());
    let model = CostModel {
        profile: &p,
        machine: &m,
        costs: &threads(),
    };
    let fastest = (1..=4)
        .map(|w| model.best_for(w).total())
        .fold(f64::INFINITY, f64::min);
    assert!(d.best.total() <= fastest * 1.05);
    assert_eq!(d.best.workers, 3, "{d:?}");
    assert!(model.best_for(4).total() < d.best.total());
}

#[test]
fn prefers_threads_to_processes_for_cpu_work() {
    let p = WorkloadProfile::uniform(10_000, Duration::from_millis(1));
    let d = decide(
        &p,
        &Machine::with_cores(4),
        &[processes(), threads()],
        &Options::default(),
    );
    assert_eq!(d.best.kind, ExecutorKind::Threads);
    let only = decide(
        &p,
        &Machine::with_cores(4),
        &[processes()],
        &Options::default(),
    );
    assert_eq!(only.best.kind, ExecutorKind::Processes);
    assert!(only.parallel);
}

#[test]
fn large_payloads_make_processes_lose() {
    let mut p = WorkloadProfile::uniform(10_000, Duration::from_micros(20));
    p.payload_bytes = 1_000_000.0; // 2 ms per item to move, against 20 µs of work
    let d = decide(
        &p,
        &Machine::with_cores(4),
        &[processes()],
        &Options::default(),
    );
    assert!(!d.parallel && d.speedup < 1.0, "{d:?}");
}

#[test]
fn a_cluster_offers_its_workers_beyond_this_machine() {
    // 100,000 items of 2 ms on a 2-core machine, with an MPI job of 16 workers on 4 hosts.
    let mut mpi = ExecutorCosts::new(
        ExecutorKind::Mpi,
        Duration::from_millis(30),
        Duration::from_micros(100),
    );
    mpi.cluster = Some((16, 4));
    let p = WorkloadProfile::uniform(100_000, Duration::from_millis(2));
    let m = Machine::with_cores(2);
    let d = decide(&p, &m, &[threads(), mpi.clone()], &Options::default());
    assert_eq!(
        (d.best.kind, d.best.workers),
        (ExecutorKind::Mpi, 16),
        "{d:?}"
    );
    assert!(
        d.parallel && d.efficiency > 0.9 && d.speedup > 14.0,
        "{d:?}"
    );
    // Without the cluster, the same costs are bound to this machine's cores.
    mpi.cluster = None;
    let local = decide(&p, &m, &[mpi], &Options::default());
    assert_eq!(local.best.workers, 2, "{local:?}");
}

#[test]
fn a_short_job_pays_start_up_first_dispatch_overhead_and_its_tail() {
    // 60 items of 100 µs on 2 workers in chunks of 7, as calibration might find the costs:
    // 30 µs to start and stop a worker, 40 µs until new workers run their first chunks,
    // 2 µs a chunk.
    let p = WorkloadProfile::uniform(60, Duration::from_micros(100));
    let m = Machine::with_cores(2);
    let mut t = ExecutorCosts::new(
        ExecutorKind::Threads,
        Duration::from_micros(30),
        Duration::from_micros(2),
    );
    t.first_dispatch = Duration::from_micros(40);
    let pred = model(&p, &m, &t).predict(2, 7);
    assert!(close(pred.startup, 2.0 * 30e-6 + 40e-6), "{pred:?}");
    assert!(close(pred.work, 3e-3));
    assert!(close(pred.overhead, 9.0 * 2e-6 / 2.0));
    // 9 chunks: one worker runs 5 of them, 32 items against an even 30.
    assert!(close(pred.tail, 2.0 * 100e-6));
    assert!(close(pred.total(), 100e-6 + 3e-3 + 9e-6 + 200e-6));
    // The first dispatch is paid once, however many workers wake.
    assert!(close(
        model(&p, &m, &t).predict(4, 7).startup,
        4.0 * 30e-6 + 40e-6
    ));
}
