//! The process pool against its anchors, each group measured in one run on the same machine.
//!
//! Targets (ratios within a group):
//! * `process_submit_result_noop`: 5,000 no-ops submitted, then their results taken, per task
//!   within 6x `parexec_thread_baseline` (the thread pool doing the same); `procspawn_pool`
//!   stays as the anchor;
//! * `process_map_small_items`: 1M trivial items with the automatic chunk size, throughput
//!   >= 0.3x `parexec_thread_baseline` (the thread pool's iterator map over the same items);
//! * `process_startup`: pool creation to first result with 2 workers (under 1.5 ms);
//! * `process_cpu_bound_equal`: speedup over serial >= 0.95 x workers.
//!
//! Workers re-execute this binary, so `main` calls `parexec::init()` (and `procspawn::init()`
//! for the anchor) before criterion runs any group.
//!
//! With the feature `mpi`, the groups also time `MpiPool` (2 worker ranks of 1 thread each)
//! when the bench runs under `mpirun -n 3`, and `process_startup` times whole `mpirun -n 3`
//! jobs (over shared memory and over TCP) when it does not; see the README's "Scaling past
//! one machine".

#[cfg(feature = "mpi")]
mod mpi;
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use parexec::{Executor, ProcessPool, ThreadPool};

const WORKERS: usize = 2;
const NOOP_BATCH: u64 = 5_000;
const MAP_ITEMS: u64 = 1_000_000;
const EQUAL_TASKS: u64 = 64;

fn noop(x: u64) -> u64 {
    x
}

fn add_one(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// A few milliseconds of arithmetic that the optimiser cannot remove.
fn spin_work(seed: u64) -> u64 {
    support::spin_work_rounds(seed, 6_000_000)
}

fn submit_result_noop(c: &mut Criterion) {
    let pool = ProcessPool::new(WORKERS).unwrap();
    let threads = ThreadPool::new(WORKERS).unwrap();
    let anchor = procspawn::Pool::new(WORKERS).unwrap();
    let mut group = c.benchmark_group("process_submit_result_noop");
    group.throughput(Throughput::Elements(NOOP_BATCH));
    group.bench_function("parexec_process", |b| b.iter(|| submit_then_results(&pool)));
    group.bench_function("parexec_thread_baseline", |b| {
        b.iter(|| submit_then_results(&threads))
    });
    group.bench_function("procspawn_pool", |b| {
        b.iter(|| {
            let handles: Vec<_> = (0..NOOP_BATCH).map(|i| anchor.spawn(i, noop)).collect();
            for handle in handles {
                black_box(handle.join().unwrap());
            }
        })
    });
    #[cfg(feature = "mpi")]
    mpi::submit_result_noop(&mut group, NOOP_BATCH, noop);
    group.finish();
    let mut group = c.benchmark_group("process_sync_round_trip");
    group.bench_function("parexec_process", |b| {
        b.iter(|| pool.submit(noop, black_box(1)).result().unwrap())
    });
    group.bench_function("procspawn_pool", |b| {
        b.iter(|| anchor.spawn(black_box(1), noop).join().unwrap())
    });
    #[cfg(feature = "mpi")]
    mpi::sync_round_trip(&mut group, noop);
    group.finish();
    anchor.shutdown();
}

/// `NOOP_BATCH` no-ops all submitted before the first result is taken.
fn submit_then_results(pool: &impl Executor) {
    let futures: Vec<_> = (0..NOOP_BATCH).map(|i| pool.submit(noop, i)).collect();
    for future in futures {
        black_box(future.result().unwrap());
    }
}

/// The sum of `add_one` over `MAP_ITEMS` items, mapped by `pool` with the automatic chunk size.
fn map_sum(pool: &impl Executor) -> u64 {
    pool.map(add_one, 0..MAP_ITEMS)
        .map(Result::unwrap)
        .fold(0, u64::wrapping_add)
}

fn map_small_items(c: &mut Criterion) {
    let pool = ProcessPool::new(WORKERS).unwrap();
    let threads = ThreadPool::new(WORKERS).unwrap();
    let mut group = c.benchmark_group("process_map_small_items");
    group.throughput(Throughput::Elements(MAP_ITEMS));
    group.sample_size(10);
    group.bench_function("parexec_process", |b| b.iter(|| black_box(map_sum(&pool))));
    group.bench_function("parexec_thread_baseline", |b| {
        b.iter(|| black_box(map_sum(&threads)))
    });
    group.bench_function("serial", |b| {
        b.iter(|| {
            (0..MAP_ITEMS)
                .map(|x| add_one(black_box(x)))
                .fold(0, u64::wrapping_add)
        })
    });
    #[cfg(feature = "mpi")]
    mpi::map_small_items(&mut group, MAP_ITEMS, add_one);
    group.finish();
}

fn startup(c: &mut Criterion) {
    let mut group = c.benchmark_group("process_startup");
    group.sample_size(20);
    group.bench_function("parexec_new_to_first_result", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let began = Instant::now();
                let pool = ProcessPool::new(WORKERS).unwrap();
                black_box(pool.submit(noop, 1).result().unwrap());
                total += began.elapsed();
                drop(pool);
            }
            total
        })
    });
    group.bench_function("procspawn_pool_new_to_first_result", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let began = Instant::now();
                let pool = procspawn::Pool::new(WORKERS).unwrap();
                black_box(pool.spawn(1, noop).join().unwrap());
                total += began.elapsed();
                pool.shutdown();
            }
            total
        })
    });
    #[cfg(feature = "mpi")]
    mpi::startup(&mut group);
    group.finish();
}

fn cpu_bound_equal(c: &mut Criterion) {
    let pool = ProcessPool::new(WORKERS).unwrap();
    let mut group = c.benchmark_group("process_cpu_bound_equal");
    group.throughput(Throughput::Elements(EQUAL_TASKS));
    group.sample_size(10);
    group.bench_function("serial", |b| {
        b.iter(|| (0..EQUAL_TASKS).map(spin_work).fold(0, u64::wrapping_add))
    });
    group.bench_function("parexec_submit", |b| {
        b.iter(|| {
            let futures: Vec<_> = (0..EQUAL_TASKS)
                .map(|i| pool.submit(spin_work, i))
                .collect();
            futures
                .into_iter()
                .map(|f| f.result().unwrap())
                .fold(0, u64::wrapping_add)
        })
    });
    group.bench_function("parexec_map", |b| {
        b.iter(|| {
            pool.map(spin_work, 0..EQUAL_TASKS)
                .map(Result::unwrap)
                .fold(0, u64::wrapping_add)
        })
    });
    #[cfg(feature = "mpi")]
    mpi::cpu_bound_equal(&mut group, EQUAL_TASKS, spin_work);
    group.finish();
}

criterion_group!(
    benches,
    submit_result_noop,
    map_small_items,
    startup,
    cpu_bound_equal
);

fn main() {
    parexec::init();
    procspawn::init();
    #[cfg(feature = "mpi")]
    mpi::startup_probe();
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
