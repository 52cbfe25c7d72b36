//! The planner's validation battery: for each workload, plan it, then measure the recommended
//! configuration and a sweep of worker counts and chunk sizes, and compare.
//!
//! ```sh
//! cargo run --release --example planner_validation            # every workload
//! cargo run --release --example planner_validation mixed short # those whose name has a word
//! ```
//!
//! Printed per workload: the predicted and measured speedup of the plan's best parallel
//! configuration and the error, the regret of the recommendation against the best swept
//! configuration that meets the efficiency threshold (serial always qualifies), and whether
//! the serial/parallel decision matches the measurements. Targets: median absolute error
//! <= 10%, regret <= 10%, every decision correct. Every speedup is a ratio of a serial run and
//! a parallel run measured back to back (the median of a few pairs for the recommendation).

use std::hint::black_box;
use std::time::{Duration, Instant};

use parexec::{ExecutorKind, Map, Payload, Plan, Planner, ProcessPool, ThreadPool};

/// Measured pairs (serial, parallel) for the recommended configuration; swept ones get one.
const REPS: usize = 3;
/// Short jobs are timed in more pairs, as many as fit in this much serial time: a
/// millisecond of noise is a large share of them.
const SHORT_JOB_BUDGET: Duration = Duration::from_millis(300);
/// Most pairs for a short job.
const MAX_PAIRS: usize = 31;

/// Burns CPU for `iters` iterations (`iters_per_micro` converts time to iterations).
fn spin(iters: u64) -> u64 {
    let mut x = iters;
    for _ in 0..iters {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

/// Waits `micros` microseconds, like a network call.
fn nap(micros: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(micros));
    micros
}

/// Waits a millisecond, like a request, then computes on the answer for `iters` iterations.
fn nap_then_spin(iters: u64) -> u64 {
    nap(1000);
    spin(iters)
}

struct Workload<A> {
    name: &'static str,
    items: Vec<A>,
    f: fn(A) -> u64,
    /// Spin iterations of a serial phase before the map.
    serial_iters: u64,
    /// A weight per item that its cost is proportional to, for the pilot.
    weight: Option<fn(&A) -> f64>,
    kind: ExecutorKind,
    workers: Vec<usize>,
}

impl Workload<u64> {
    fn cpu(name: &'static str, items: Vec<u64>) -> Self {
        Workload {
            name,
            items,
            f: spin,
            serial_iters: 0,
            weight: None,
            kind: ExecutorKind::Threads,
            workers: vec![1, 2, 3],
        }
    }
}

/// A small deterministic generator (xorshift64*), so runs are repeatable.
struct Rng(u64);

impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal, Box-Muller.
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next_f64().max(1e-12), self.next_f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn iters_per_micro() -> f64 {
    let iters = 2_000_000;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        black_box(spin(iters));
        best = best.min(started.elapsed().as_secs_f64());
    }
    iters as f64 / (best * 1e6)
}

/// Hashes a buffer: about a nanosecond per byte, cheap next to sending it to a process.
fn checksum(data: Vec<u8>) -> u64 {
    data.iter()
        .fold(0_u64, |h, &b| h.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn cpu_workloads(per_us: f64) -> Vec<Workload<u64>> {
    let us = |micros: f64| (micros * per_us).round().max(1.0) as u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Lognormal, sigma 1, median 60 µs (mean about 100 µs).
    let lognormal: Vec<u64> = (0..2000).map(|_| us(60.0 * rng.normal().exp())).collect();
    // One item three times the other 49 combined, first in the input.
    let mut dominant = vec![us(2000.0); 50];
    dominant[0] = us(3.0 * 49.0 * 2000.0);
    vec![
        Workload::cpu("uniform CPU-bound (2000 x 100 µs)", vec![us(100.0); 2000]),
        Workload::cpu("skewed, lognormal (2000, mean ~100 µs)", lognormal),
        Workload {
            weight: Some(|&iters| iters as f64),
            ..Workload::cpu("skewed, one item 3x the rest (50)", dominant)
        },
        Workload {
            serial_iters: us(200_000.0 * 0.3 / 0.7),
            ..Workload::cpu("30% serial phase (2000 x 100 µs)", vec![us(100.0); 2000])
        },
        Workload {
            f: nap,
            workers: vec![1, 2, 4, 8, 16, 32, 64],
            ..Workload::cpu("I/O-bound (300 x 2 ms sleep)", vec![2000; 300])
        },
        Workload::cpu("tiny items (3000 x 0.05 µs)", vec![us(0.05); 3000]),
        Workload {
            f: nap_then_spin,
            workers: vec![1, 2, 4, 8, 9, 12, 16, 24, 32],
            ..Workload::cpu("mixed, 1 ms wait + 300 µs CPU (300)", vec![us(300.0); 300])
        },
        Workload {
            f: nap_then_spin,
            workers: vec![1, 2, 8, 16, 22, 24, 32, 48, 64],
            ..Workload::cpu("mixed, 1 ms wait + 100 µs CPU (600)", vec![us(100.0); 600])
        },
        short("short job, 60 x 100 µs (6 ms)", vec![us(100.0); 60]),
        short("short job, 500 x 10 µs (5 ms)", vec![us(10.0); 500]),
        short("short job, 100 x 200 µs (20 ms)", vec![us(200.0); 100]),
        short("short job, 1000 x 50 µs (50 ms)", vec![us(50.0); 1000]),
    ]
}

/// A job of a few milliseconds in all, where pool start-up and wake-ups weigh.
fn short(name: &'static str, items: Vec<u64>) -> Workload<u64> {
    Workload {
        workers: vec![1, 2, 3, 4],
        ..Workload::cpu(name, items)
    }
}

fn payload_workload() -> Workload<Vec<u8>> {
    Workload {
        name: "large payloads, process pool (100 x 256 KiB)",
        items: (0..100).map(|i| vec![i as u8; 256 << 10]).collect(),
        f: checksum,
        serial_iters: 0,
        weight: None,
        kind: ExecutorKind::Processes,
        workers: vec![1, 2, 3],
    }
}

/// CPU ticks so far: busy on all CPUs, in total on all CPUs, and used by this process and
/// its reaped children. `None` where /proc is unavailable.
#[cfg(target_os = "linux")]
fn cpu_ticks() -> Option<(u64, u64, u64)> {
    use procfs::CurrentSI;
    let cpu = procfs::KernelStats::current().ok()?.total;
    let waiting = cpu.idle + cpu.iowait.unwrap_or(0);
    let busy = cpu.user
        + cpu.nice
        + cpu.system
        + cpu.irq.unwrap_or(0)
        + cpu.softirq.unwrap_or(0)
        + cpu.steal.unwrap_or(0);
    let own = procfs::process::Process::myself().ok()?.stat().ok()?;
    let children = u64::try_from(own.cutime + own.cstime).unwrap_or(0);
    Some((busy, busy + waiting, own.utime + own.stime + children))
}

#[cfg(not(target_os = "linux"))]
fn cpu_ticks() -> Option<(u64, u64, u64)> {
    None
}

/// Share of the machine's CPU that other processes used between two readings.
fn others_share(before: Option<(u64, u64, u64)>, after: Option<(u64, u64, u64)>) -> Option<f64> {
    let ((busy0, total0, own0), (busy1, total1, own1)) = (before?, after?);
    let busy = busy1
        .saturating_sub(busy0)
        .saturating_sub(own1.saturating_sub(own0));
    Some(busy as f64 / total1.saturating_sub(total0).max(1) as f64)
}

fn fastest(reps: usize, mut run: impl FnMut() -> Duration) -> Duration {
    (0..reps)
        .map(|_| run())
        .min()
        .expect("at least one repetition")
}

fn run_serial<A: Payload + Clone>(w: &Workload<A>) -> Duration {
    let items = w.items.clone();
    let started = Instant::now();
    black_box(spin(w.serial_iters));
    let out: Vec<u64> = items.into_iter().map(w.f).collect();
    black_box(out);
    started.elapsed()
}

/// The whole program on a fresh pool: serial phase, pool start, map, pool shutdown.
fn run_parallel<A: Payload + Clone>(
    w: &Workload<A>,
    workers: usize,
    chunksize: Option<usize>,
) -> Duration {
    let items = w.items.clone();
    let started = Instant::now();
    black_box(spin(w.serial_iters));
    fn sized<A>(
        map: Map<'_, std::vec::IntoIter<A>, u64>,
        chunksize: Option<usize>,
    ) -> Map<'_, std::vec::IntoIter<A>, u64> {
        match chunksize {
            Some(c) => map.chunksize(c),
            None => map,
        }
    }
    let out: Vec<u64> = match w.kind {
        ExecutorKind::Threads => {
            let pool = ThreadPool::new(workers).expect("the pool starts");
            let out = sized(pool.map(w.f, items), chunksize).collect::<Result<_, _>>();
            drop(pool);
            out
        }
        ExecutorKind::Processes => {
            let pool = ProcessPool::new(workers).expect("the pool starts");
            let out = sized(pool.map(w.f, items), chunksize).collect::<Result<_, _>>();
            drop(pool);
            out
        }
        ExecutorKind::Mpi => unreachable!("every validation workload names a local executor"),
    }
    .expect("no item fails");
    black_box(out);
    started.elapsed()
}

fn plan<A: Payload + Clone + Sync>(w: &Workload<A>) -> Plan {
    let serial_phase = fastest(REPS, || {
        let started = Instant::now();
        black_box(spin(w.serial_iters));
        started.elapsed()
    });
    let planner = Planner::new();
    let planner = match w.weight {
        Some(weight) => planner.pilot_weighted_fn(&w.items, w.f, weight),
        None => planner.pilot_fn(&w.items, w.f),
    };
    let planner = if w.serial_iters > 0 {
        planner.serial(serial_phase)
    } else {
        planner
    };
    planner.plan_for(w.kind).expect("the planner plans")
}

struct Row {
    name: &'static str,
    decision: String,
    predicted: f64,
    measured: f64,
    error: f64,
    best: String,
    regret: f64,
    correct: bool,
}

/// The median over `pairs` of serial time / parallel time, each pair measured back to back
/// so that load from elsewhere on the machine hits both sides alike.
fn speedup<A: Payload + Clone>(
    w: &Workload<A>,
    workers: usize,
    chunksize: Option<usize>,
    pairs: usize,
) -> f64 {
    let mut ratios: Vec<f64> = (0..pairs)
        .map(|_| {
            let serial = run_serial(w);
            let parallel = run_parallel(w, workers, chunksize);
            serial.as_secs_f64() / parallel.as_secs_f64()
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Pairs to time a configuration in: [`REPS`], more for a short job.
fn pairs_for(serial: Duration) -> usize {
    let fit = SHORT_JOB_BUDGET.as_secs_f64() / serial.as_secs_f64().max(1e-6);
    (fit as usize).clamp(REPS, MAX_PAIRS)
}

fn validate<A: Payload + Clone + Sync>(w: &Workload<A>, cores: usize) -> Row {
    let plan = plan(w);
    println!("== {}\n{plan}", w.name);
    let expected: Vec<u64> = w.items.iter().cloned().map(w.f).collect();
    let via_plan: Vec<u64> = plan
        .map_fn(w.f, w.items.clone())
        .and_then(|m| m.collect::<Result<_, _>>())
        .expect("the plan runs");
    assert_eq!(
        via_plan, expected,
        "the plan's map returns every result in order"
    );

    let pairs = pairs_for(plan.serial_time);
    let measured = speedup(w, plan.parallel_workers, Some(plan.chunksize), pairs);
    let c = plan.chunksize;
    let mut chunks = vec![Some(1), Some((c / 4).max(1)), Some(c), Some(c * 4), None];
    chunks.dedup();
    let recommended = if plan.parallel { measured } else { 1.0 };
    let mut best = ("serial".to_owned(), 1.0);
    let mut any_efficient = false;
    for &workers in &w.workers {
        let efficient =
            |s: f64| workers > 1 && s > 1.0 && s / workers.min(cores) as f64 >= plan.threshold;
        for &chunk in &chunks {
            let mut s = if (workers, chunk) == (plan.parallel_workers, Some(c)) {
                measured
            } else {
                speedup(w, workers, chunk, 1)
            };
            // One pair is noisy: confirm with more wherever the verdict depends on it.
            let near_threshold =
                (s / workers.min(cores) as f64 / plan.threshold - 1.0).abs() < 0.15;
            if (near_threshold || s > recommended.max(best.1))
                && (workers, chunk) != (plan.parallel_workers, Some(c))
            {
                s = speedup(w, workers, chunk, pairs);
            }
            any_efficient |= efficient(s);
            if efficient(s) && s > best.1 {
                let chunk = chunk.map_or("auto".to_owned(), |c| c.to_string());
                best = (format!("x{workers} c{chunk} {s:.2}x"), s);
            }
        }
    }
    Row {
        name: w.name,
        decision: if plan.parallel {
            format!("{} x{} c{}", plan.kind, plan.workers, plan.chunksize)
        } else {
            "serial".to_owned()
        },
        predicted: plan.speedup,
        measured,
        error: plan.speedup / measured - 1.0,
        best: best.0,
        regret: best.1 / recommended - 1.0,
        correct: plan.parallel == any_efficient,
    }
}

fn main() {
    parexec::init();
    let started = Instant::now();
    let calibration = parexec::planner::Calibration::get().expect("calibration runs");
    let cores = calibration.machine.usable_cores;
    let ticks_before = cpu_ticks();
    let per_us = iters_per_micro();
    println!(
        "machine: {cores} usable cores (core efficiency {:.2}); thread pool: start-up {:?}/worker, first dispatch {:?}, chunk overhead {:?}; calibration took {:?}\n",
        calibration.machine.core_efficiency,
        calibration.threads.startup_per_worker,
        calibration.threads.first_dispatch,
        calibration.threads.chunk_overhead,
        calibration.took
    );
    // Words on the command line pick the workloads whose name has one of them.
    let words: Vec<String> = std::env::args().skip(1).collect();
    let wanted = |name: &str| words.is_empty() || words.iter().any(|w| name.contains(w.as_str()));
    let mut rows: Vec<Row> = cpu_workloads(per_us)
        .iter()
        .filter(|w| wanted(w.name))
        .map(|w| validate(w, cores))
        .collect();
    let payload = payload_workload();
    if wanted(payload.name) {
        rows.push(validate(&payload, cores));
    }
    if rows.is_empty() {
        eprintln!("error: no workload's name contains any of {words:?}");
        std::process::exit(2);
    }

    println!(
        "\n| workload | decision | predicted | measured | error | best admissible (swept) | regret | decision correct |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2}x | {:.2}x | {:+.1}% | {} | {:.1}% | {} |",
            r.name,
            r.decision,
            r.predicted,
            r.measured,
            100.0 * r.error,
            r.best,
            100.0 * r.regret,
            if r.correct { "yes" } else { "NO" }
        );
    }
    let mut errors: Vec<f64> = rows.iter().map(|r| r.error.abs()).collect();
    errors.sort_by(f64::total_cmp);
    let median = if errors.len() % 2 == 1 {
        errors[errors.len() / 2]
    } else {
        (errors[errors.len() / 2 - 1] + errors[errors.len() / 2]) / 2.0
    };
    let worst_regret = rows.iter().map(|r| r.regret).fold(0.0, f64::max);
    let correct = rows.iter().filter(|r| r.correct).count();
    if let Ok(processes) = parexec::planner::Calibration::process_pool() {
        println!(
            "\nprocess pool: start-up {:?}/worker, chunk overhead {:?}, transfer {:.2} ns/byte",
            processes.startup_per_worker, processes.chunk_overhead, processes.transfer_ns_per_byte
        );
    }
    match others_share(ticks_before, cpu_ticks()) {
        Some(share) => {
            println!(
                "\nother processes used {:.0}% of the CPU during the run",
                100.0 * share
            );
            if share > 0.05 {
                println!("warning: parallel timings are unreliable under load from elsewhere");
            }
        }
        None => println!("\n(no /proc: cannot tell whether other processes used the CPU)"),
    }
    println!(
        "\nmedian |error| {:.1}% (target <= 10%), worst regret {:.1}% (target <= 10%), decisions correct {correct}/{} ; ran in {:.0?}",
        100.0 * median,
        100.0 * worst_regret,
        rows.len(),
        started.elapsed()
    );
}
