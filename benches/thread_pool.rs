//! The thread pool against its anchors, each group measured in one run on the same machine:
//! serial code, `rayon`, and the `threadpool` crate.
//!
//! Targets (ratios within a group): `submit_result_noop` per task <= rayon's spawn + channel
//! send; in `map_trivial`, `pool.map(f, items).collect::<Result<Vec<_>, _>>()`
//! (`parexec_collect_result_vec`) <= 1.5x and `collect_vec()` <= 1.2x rayon's
//! `par_iter().map().collect()` (`rayon_par_iter_collect`); `map_borrowed_slice`
//! (a scoped map over a borrowed slice) within 2x of rayon's `par_iter()` over the same slice;
//! `cpu_bound_equal` speedup over serial >= 0.95 x workers; `short_job_60x100us` (pool start
//! included) speedup over serial >= 1.8 on 2 workers.

mod support;

use std::hint::black_box;
use std::sync::mpsc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parexec::planner::WorkloadProfile;
use parexec::{ExecutorKind, Planner, ThreadPool};
use rayon::prelude::*;

const WORKERS: usize = 2;
const NOOP_BATCH: u64 = 10_000;
const MAP_ITEMS: u64 = 10_000_000;
const EQUAL_TASKS: u64 = 64;
const SHORT_JOB_ITEMS: u64 = 60;
/// Draws of `spin_work_rounds` taking about 100 µs on the project's machine.
const SHORT_ITEM_ROUNDS: u32 = 190_000;

/// About a millisecond of arithmetic that the optimiser cannot remove.
fn spin_work(seed: u64) -> u64 {
    support::spin_work_rounds(seed, 3_000_000)
}

fn submit_result_noop(c: &mut Criterion) {
    let pool = ThreadPool::new(WORKERS).unwrap();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    let plain_pool = threadpool::ThreadPool::new(WORKERS);
    let mut group = c.benchmark_group("submit_result_noop");
    group.throughput(Throughput::Elements(NOOP_BATCH));
    group.bench_function("parexec", |b| {
        b.iter(|| {
            let futures: Vec<_> = (0..NOOP_BATCH)
                .map(|i| pool.submit(move || black_box(i)))
                .collect();
            for future in futures {
                black_box(future.result().unwrap());
            }
        })
    });
    // The anchors return no handle: each task sends its value back over a channel. Written
    // out per pool, so neither pays for an extra boxing layer.
    group.bench_function("rayon_spawn_channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for i in 0..NOOP_BATCH {
                let tx = tx.clone();
                rayon_pool.spawn(move || tx.send(black_box(i)).unwrap());
            }
            rx.iter().take(NOOP_BATCH as usize).for_each(|v| {
                black_box(v);
            });
        })
    });
    group.bench_function("threadpool_execute_channel", |b| {
        b.iter(|| {
            let (tx, rx) = crossbeam_channel::unbounded();
            for i in 0..NOOP_BATCH {
                let tx = tx.clone();
                plain_pool.execute(move || tx.send(black_box(i)).unwrap());
            }
            rx.iter().take(NOOP_BATCH as usize).for_each(|v| {
                black_box(v);
            });
        })
    });
    group.finish();
}

fn map_trivial(c: &mut Criterion) {
    let pool = ThreadPool::new(WORKERS).unwrap();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    let mut group = c.benchmark_group("map_trivial");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MAP_ITEMS));
    group.bench_function("serial", |b| {
        b.iter(|| {
            (0..MAP_ITEMS)
                .map(|x| black_box(x) * 2)
                .collect::<Vec<u64>>()
        })
    });
    // What users write; `Map::collect` routes it to the in-place path.
    group.bench_function("parexec_collect_result_vec", |b| {
        b.iter(|| {
            pool.map(|x: u64| black_box(x) * 2, 0..MAP_ITEMS)
                .collect::<Result<Vec<u64>, _>>()
                .unwrap()
        })
    });
    group.bench_function("parexec_collect_vec", |b| {
        b.iter(|| {
            pool.map(|x: u64| black_box(x) * 2, 0..MAP_ITEMS)
                .collect_vec()
                .unwrap()
        })
    });
    // The same map consumed item by item, as `Iterator::collect` does.
    group.bench_function("parexec_iterator_collect", |b| {
        b.iter(|| {
            Iterator::collect::<Result<Vec<u64>, _>>(
                pool.map(|x: u64| black_box(x) * 2, 0..MAP_ITEMS),
            )
            .unwrap()
        })
    });
    group.bench_function("rayon_par_iter_collect", |b| {
        b.iter(|| {
            rayon_pool.install(|| {
                (0..MAP_ITEMS)
                    .into_par_iter()
                    .map(|x| black_box(x) * 2)
                    .collect::<Vec<u64>>()
            })
        })
    });
    group.finish();
}

fn map_borrowed_slice(c: &mut Criterion) {
    let pool = ThreadPool::new(WORKERS).unwrap();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    let table: Vec<u64> = (0..MAP_ITEMS).collect();
    let mut group = c.benchmark_group("map_borrowed_slice");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MAP_ITEMS));
    group.bench_function("serial", |b| {
        b.iter(|| {
            table
                .iter()
                .map(|x| black_box(*x) * 2)
                .collect::<Vec<u64>>()
        })
    });
    group.bench_function("parexec_scope_map_collect_vec", |b| {
        b.iter(|| {
            pool.scope(|s| s.map(|x: &u64| black_box(*x) * 2, &table).collect_vec())
                .unwrap()
        })
    });
    group.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            rayon_pool.install(|| {
                table
                    .par_iter()
                    .map(|x| black_box(*x) * 2)
                    .collect::<Vec<u64>>()
            })
        })
    });
    group.finish();
}

fn cpu_bound_equal(c: &mut Criterion) {
    let pool = ThreadPool::new(WORKERS).unwrap();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(WORKERS)
        .build()
        .unwrap();
    let plain_pool = threadpool::ThreadPool::new(WORKERS);
    let mut group = c.benchmark_group("cpu_bound_equal");
    group.sample_size(10);
    group.throughput(Throughput::Elements(EQUAL_TASKS));
    group.bench_function("serial", |b| {
        b.iter(|| (0..EQUAL_TASKS).map(spin_work).fold(0, u64::wrapping_add))
    });
    group.bench_function("parexec_submit", |b| {
        b.iter(|| {
            let futures: Vec<_> = (0..EQUAL_TASKS)
                .map(|i| pool.submit(move || spin_work(i)))
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
    group.bench_function("rayon_par_iter", |b| {
        b.iter(|| {
            rayon_pool.install(|| {
                (0..EQUAL_TASKS)
                    .into_par_iter()
                    .map(spin_work)
                    .reduce(|| 0, u64::wrapping_add)
            })
        })
    });
    group.bench_function("threadpool_execute_channel", |b| {
        b.iter(|| {
            let (tx, rx) = mpsc::channel();
            for i in 0..EQUAL_TASKS {
                let tx = tx.clone();
                plain_pool.execute(move || tx.send(spin_work(i)).unwrap());
            }
            rx.iter()
                .take(EQUAL_TASKS as usize)
                .fold(0, u64::wrapping_add)
        })
    });
    group.finish();
}

/// A job of 60 items of about 100 µs each (6 ms of work), timed from the pool's start to the
/// last result: the short jobs where starting and waking workers costs most.
fn short_job_60x100us(c: &mut Criterion) {
    let item = |seed: u64| support::spin_work_rounds(seed, SHORT_ITEM_ROUNDS);
    // The planned configuration: planned once, outside the timing, as an application plans
    // before it runs; its chunk size with the 2 workers the target names.
    let profile = WorkloadProfile::uniform(
        SHORT_JOB_ITEMS as usize,
        std::time::Duration::from_micros(100),
    );
    let plan = Planner::new()
        .profile(profile)
        .plan_for(ExecutorKind::Threads)
        .unwrap();
    eprintln!(
        "short_job_60x100us: planned chunk size {} (parallel: {}, {} workers)",
        plan.chunksize, plan.parallel, plan.parallel_workers
    );
    let mut group = c.benchmark_group("short_job_60x100us");
    group.sample_size(30);
    group.throughput(Throughput::Elements(SHORT_JOB_ITEMS));
    group.bench_function("serial", |b| {
        b.iter(|| {
            (0..SHORT_JOB_ITEMS)
                .map(|i| item(black_box(i)))
                .fold(0, u64::wrapping_add)
        })
    });
    group.bench_function("parexec_pool_new_map_2_workers", |b| {
        b.iter(|| {
            let pool = ThreadPool::new(WORKERS).unwrap();
            pool.map(item, 0..SHORT_JOB_ITEMS)
                .chunksize(plan.chunksize)
                .collect_vec()
                .unwrap()
                .into_iter()
                .fold(0, u64::wrapping_add)
        })
    });
    group.bench_function("rayon_pool_build_par_iter_2_workers", |b| {
        b.iter(|| {
            let rayon_pool = rayon::ThreadPoolBuilder::new()
                .num_threads(WORKERS)
                .build()
                .unwrap();
            rayon_pool.install(|| {
                (0..SHORT_JOB_ITEMS)
                    .into_par_iter()
                    .map(item)
                    .reduce(|| 0, u64::wrapping_add)
            })
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    submit_result_noop,
    map_trivial,
    map_borrowed_slice,
    cpu_bound_equal,
    short_job_60x100us
);
criterion_main!(benches);
