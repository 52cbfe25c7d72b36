//! The `MpiPool` entries of the process-pool groups (feature `mpi`).
//!
//! Under `mpirun -n 3` the pool has 2 worker ranks of one thread each, as the process pool has
//! 2 workers. Outside `mpirun`, only `process_startup` gains entries: whole `mpirun -n 3`
//! jobs of this binary, which then runs [`startup_probe`] instead of criterion.

use std::hint::black_box;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::BenchmarkGroup;
use criterion::measurement::WallTime;
use parexec::MpiPool;

/// The argument that makes this binary one start-up probe: open a pool, run one task, exit.
const PROBE: &str = "--mpi-startup-probe";

type Group<'a> = BenchmarkGroup<'a, WallTime>;
type Task = fn(u64) -> u64;

/// The pool a group times; `None` when the bench does not run under `mpirun`.
fn pool() -> Option<MpiPool> {
    MpiPool::builder()
        .threads_per_rank(1)
        .keep_workers()
        .build()
        .ok()
}

pub fn submit_result_noop(group: &mut Group<'_>, batch: u64, noop: Task) {
    let Some(pool) = pool() else { return };
    group.bench_function("parexec_mpi", |b| {
        b.iter(|| {
            let futures: Vec<_> = (0..batch).map(|i| pool.submit(noop, i)).collect();
            for future in futures {
                black_box(future.result().unwrap());
            }
        })
    });
}

/// One task at a time: hot, and after the idle worker rank has backed off to its longest
/// sleep, which is what the back-off costs in latency.
pub fn sync_round_trip(group: &mut Group<'_>, noop: Task) {
    let Some(pool) = pool() else { return };
    group.bench_function("parexec_mpi", |b| {
        b.iter(|| pool.submit(noop, black_box(1)).result().unwrap())
    });
    group.bench_function("parexec_mpi_after_5ms_idle", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                std::thread::sleep(Duration::from_millis(5));
                let began = Instant::now();
                black_box(pool.submit(noop, black_box(1)).result().unwrap());
                total += began.elapsed();
            }
            total
        })
    });
}

pub fn map_small_items(group: &mut Group<'_>, items: u64, add_one: Task) {
    let Some(pool) = pool() else { return };
    group.bench_function("parexec_mpi_auto_chunks", |b| {
        b.iter(|| {
            let sum: u64 = pool
                .map(add_one, 0..items)
                .map(Result::unwrap)
                .fold(0, u64::wrapping_add);
            black_box(sum)
        })
    });
}

pub fn cpu_bound_equal(group: &mut Group<'_>, tasks: u64, spin_work: Task) {
    let Some(pool) = pool() else { return };
    group.bench_function("parexec_mpi_map", |b| {
        b.iter(|| {
            pool.map(spin_work, 0..tasks)
                .map(Result::unwrap)
                .fold(0, u64::wrapping_add)
        })
    });
}

/// Whole `mpirun -n 3` jobs of this binary as a probe, when `mpirun` is at hand and this run
/// is not itself under MPI.
pub fn startup(group: &mut Group<'_>) {
    let launched = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    let mpirun = Command::new("mpirun")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let Ok(me) = std::env::current_exe() else {
        return;
    };
    if launched || !mpirun {
        return;
    }
    for (name, transport) in [
        ("mpi_pool_mpirun_n3_shm_to_first_result", "self,vader"),
        ("mpi_pool_mpirun_n3_tcp_to_first_result", "self,tcp"),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let began = Instant::now();
                for _ in 0..iterations {
                    let status = Command::new("mpirun")
                        .args(["--oversubscribe", "--mca", "btl", transport, "-n", "3"])
                        .arg(&me)
                        .arg(PROBE)
                        .status()
                        .expect("mpirun starts");
                    assert!(status.success(), "the start-up probe failed: {status}");
                }
                began.elapsed()
            })
        });
    }
}

fn echo(x: u64) -> u64 {
    x
}

/// In a probe started by [`startup`]: opens the pool, runs one task and exits.
pub fn startup_probe() {
    if !std::env::args().any(|arg| arg == PROBE) {
        return;
    }
    let pool = MpiPool::world().expect("the probe runs under mpirun");
    assert_eq!(pool.submit(echo, 7).result().expect("the task runs"), 7);
    drop(pool);
    std::process::exit(0);
}
