//! The planner on ordinary thread-pool code: items of any `Send` type (shared buffers, structs
//! without serde, strings borrowed from local data) and capturing closures; serde only where
//! a process pool is a candidate; and a serial plan that never runs in parallel. Decisions
//! are injected as profiles wherever one is checked: no assertion depends on timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parexec::planner::{Machine, WorkloadProfile};
use parexec::{Error, ExecutorKind, Planner, ThreadPool};

/// Nanoseconds per item on a fixed machine: a plan that stays serial.
fn serial_plan() -> parexec::Plan {
    let plan = Planner::new()
        .profile(WorkloadProfile::uniform(10_000, Duration::from_nanos(2)))
        .machine(Machine::with_cores(2))
        .plan()
        .unwrap();
    assert!(!plan.parallel, "{plan}");
    plan
}

#[test]
fn shared_buffers_are_piloted_and_run_by_a_capturing_closure() {
    let blocks: Vec<Arc<Vec<u8>>> = (0..64).map(|i| Arc::new(vec![i as u8; 1024])).collect();
    let salt = 1_000_u64;
    let digest = move |block: Arc<Vec<u8>>| block.iter().map(|&b| u64::from(b)).sum::<u64>() + salt;
    let plan = Planner::new().pilot(&blocks, digest).plan().unwrap();
    assert_eq!(plan.workload.items, 64);
    let sums = plan
        .map(digest, blocks.clone())
        .unwrap()
        .collect_vec()
        .unwrap();
    assert_eq!(sums[5], 5 * 1024 + 1_000);
    assert!(
        blocks.iter().all(|b| Arc::strong_count(b) == 1),
        "every clone the pilot and the map made is dropped"
    );
}

/// Deliberately without serde: the thread planner must not ask for it.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    sensor: String,
    samples: Vec<f64>,
}

#[test]
fn a_struct_without_serde_is_piloted_and_run() {
    let readings: Vec<Reading> = (0..200)
        .map(|i| Reading {
            sensor: format!("s{i}"),
            samples: vec![f64::from(i); 8],
        })
        .collect();
    let mean = |r: Reading| (r.sensor, r.samples.iter().sum::<f64>() / 8.0);
    let plan = Planner::new()
        .pilot_weighted(&readings, mean, |r| r.samples.len() as f64)
        .plan()
        .unwrap();
    let means = plan.map(mean, readings).unwrap().collect_vec().unwrap();
    assert_eq!(means[7], ("s7".to_owned(), 7.0));
}

#[test]
fn strings_borrowed_from_a_local_run_in_a_scoped_map_with_the_plan() {
    let text = String::from("the quick brown fox jumps over the lazy dog");
    let words: Vec<&str> = text.split(' ').collect();
    let plan = Planner::new()
        .pilot(&words, |w: &str| w.len())
        .plan()
        .unwrap();
    let pool = ThreadPool::new(plan.workers).unwrap();
    let lengths = pool
        .scope(|s| {
            s.map(|w: &str| w.len(), words.iter().copied())
                .with_plan(&plan)
                .collect_vec()
        })
        .unwrap();
    assert_eq!(lengths, [3, 5, 5, 3, 5, 4, 3, 4, 3]);
}

#[test]
fn a_process_pool_needs_a_pilot_over_serde_types() {
    let items: Vec<u32> = (0..10).collect();
    let planned = Planner::new()
        .pilot(&items, |x: u32| x + 1)
        .executors(&[ExecutorKind::Threads, ExecutorKind::Processes])
        .plan();
    match planned {
        Err(Error::InvalidArgument(message)) => assert!(message.contains("pilot_fn"), "{message}"),
        other => panic!("expected a clear error, got {other:?}"),
    }
}

#[test]
fn a_serial_plan_asks_for_one_worker_and_keeps_the_best_parallel_option() {
    let plan = serial_plan();
    assert_eq!(plan.workers, 1);
    assert!(plan.parallel_workers >= 1);

    let mut refitted = Planner::new()
        .profile(WorkloadProfile::uniform(
            100_000,
            Duration::from_micros(100),
        ))
        .machine(Machine::with_cores(2))
        .plan()
        .unwrap();
    assert!(refitted.parallel && refitted.workers == 2, "{refitted}");
    refitted.record_serial(Duration::from_secs(10));
    refitted.record(2, Duration::from_secs(8)).unwrap();
    assert!(
        !refitted.parallel,
        "1.25x on 2 workers is below the threshold"
    );
    assert_eq!(refitted.workers, 1);
}

#[test]
fn with_plan_runs_a_serial_plan_on_the_consuming_thread_only() {
    let plan = serial_plan();
    let pool = ThreadPool::new(2).unwrap();
    let caller = std::thread::current().id();
    let on_caller = move |_: u32| std::thread::current().id() == caller;
    let collected = pool
        .map(on_caller, 0..10_000)
        .with_plan(&plan)
        .collect_vec()
        .unwrap();
    let iterated: Vec<bool> = pool
        .map(on_caller, 0..10_000)
        .with_plan(&plan)
        .unordered()
        .map(|(_, r)| r.unwrap())
        .collect();
    assert!(collected.into_iter().chain(iterated).all(|here| here));
    assert_eq!(pool.stats().submitted, 0, "nothing went to the pool");
}

#[test]
fn a_serial_map_computes_one_chunk_at_a_time() {
    let plan = serial_plan();
    let pool = ThreadPool::new(2).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let mut map = pool
        .map(
            move |x: u64| {
                counted.fetch_add(1, Ordering::SeqCst);
                x
            },
            0..,
        )
        .with_plan(&plan);
    assert_eq!(map.next().unwrap().unwrap(), 0);
    assert_eq!(calls.load(Ordering::SeqCst), plan.chunksize);
}
