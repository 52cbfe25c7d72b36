//! The planner through the public API: free helpers, planning from a pilot or a given
//! profile, running a plan, feedback, and bad input. No assertion depends on timing: profiles
//! are injected wherever a decision is checked.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::time::Duration;

use parexec::planner::{
    Limit, Machine, UslFit, WorkloadProfile, amdahl, gustafson, imbalance_bound, karp_flatt,
};
use parexec::{Error, ExecutorKind, Planner, ThreadPool};

/// Decisions are checked on a fixed machine: the one calibration finds depends on the load
/// from other tests running at the same time.
fn planner() -> Planner<'static> {
    Planner::new().machine(Machine::with_cores(2))
}

fn halve(x: i64) -> i64 {
    if x == 13 {
        deliberate::panic_with("unlucky item");
    }
    x / 2
}

#[test]
fn free_helpers_agree_with_each_other() {
    let s = amdahl(0.9, 4.0).unwrap();
    assert!((s - 1.0 / (0.1 + 0.9 / 4.0)).abs() < 1e-12);
    assert!((karp_flatt(s, 4.0).unwrap() - 0.1).abs() < 1e-12);
    assert!((gustafson(0.1, 4.0).unwrap() - 3.7).abs() < 1e-12);
    let bound = imbalance_bound(Duration::from_secs(4), Duration::from_secs(3)).unwrap();
    assert!((bound - 4.0 / 3.0).abs() < 1e-12);

    let truth = UslFit {
        a: 9.0,
        b: 1.0,
        c: 0.0,
    };
    let runs: Vec<(usize, Duration)> = [1, 2, 4]
        .iter()
        .map(|&n| (n, Duration::from_secs_f64(truth.predict(n as f64))))
        .collect();
    let fit = UslFit::fit(&runs).unwrap();
    assert!((fit.speedup(8.0) - amdahl(0.9, 8.0).unwrap()).abs() < 1e-6);
}

#[test]
fn a_serial_plan_runs_inline_in_order_and_isolates_panics() {
    deliberate::silence();
    let plan = planner()
        .profile(WorkloadProfile::uniform(100, Duration::from_nanos(10)))
        .plan()
        .unwrap();
    assert!(!plan.parallel, "{plan}");
    let out: Vec<Result<i64, Error>> = plan.map(halve, 0..40).unwrap().collect();
    assert_eq!(out.len(), 40);
    for (i, r) in out.iter().enumerate() {
        match r {
            Ok(v) => assert_eq!(*v, i as i64 / 2),
            Err(Error::Panicked { message, .. }) => {
                assert_eq!(
                    (i, message.clone()),
                    (13, format!("{} unlucky item", deliberate::PREFIX))
                )
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert!(plan.to_string().contains("decision: serial"));
}

#[test]
fn large_cpu_bound_work_goes_parallel_on_the_usable_cores() {
    let plan = planner()
        .profile(WorkloadProfile::uniform(
            1_000_000,
            Duration::from_millis(1),
        ))
        .plan()
        .unwrap();
    assert!(plan.parallel, "{plan}");
    assert_eq!((plan.kind, plan.workers), (ExecutorKind::Threads, 2));
    assert!(plan.chunksize >= 1 && plan.chunk_duration <= Duration::from_secs(1));
    let out: Vec<i64> = plan
        .map(halve, (0..1000).filter(|&x| x != 13))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out.len(), 999);
    assert_eq!(out[998], 999 / 2);
    // The curve starts at 1x and labels worker counts beyond this machine as modelled.
    assert_eq!(plan.curve[0].workers, 1);
    assert!((plan.curve[0].speedup - 1.0).abs() < 0.05);
    assert!(plan.curve.iter().all(|p| p.modelled == (p.workers > 2)));
}

#[test]
fn waiting_work_gets_more_threads_than_cores() {
    let mut calls = WorkloadProfile::uniform(2000, Duration::from_millis(20));
    calls.cpu_share = 0.01;
    let plan = planner().profile(calls.clone()).plan().unwrap();
    assert!(plan.parallel && plan.workers > 2, "{plan}");
    let capped = planner().profile(calls).max_workers(3).plan().unwrap();
    assert!(capped.workers <= 3);
}

#[test]
fn a_dominant_item_is_named_as_the_limit() {
    // Three files, the first 3x the other two combined.
    let mut files = WorkloadProfile::uniform(3, Duration::from_millis(400));
    files.largest_item = Duration::from_millis(900);
    files.largest_position = 0.0;
    let plan = planner().profile(files).plan().unwrap();
    assert!(!plan.parallel);
    assert_eq!(plan.limit, Limit::Imbalance);
    assert!((plan.imbalance_bound - 4.0 / 3.0).abs() < 1e-9);
    assert!(plan.to_string().contains("largest item 75.0% of the work"));
}

#[test]
fn a_serial_part_is_amdahl_and_the_threshold_decides() {
    let work = WorkloadProfile::uniform(10_000, Duration::from_micros(70));
    let strict = planner()
        .profile(work.clone())
        .serial(Duration::from_millis(300))
        .plan()
        .unwrap();
    assert!((strict.serial_share - 0.3).abs() < 1e-9);
    assert!((strict.amdahl_bound - 1.0 / 0.3).abs() < 1e-9);
    assert!(
        !strict.parallel,
        "Amdahl caps 2 cores at 1.54x: efficiency 0.77\n{strict}"
    );
    let lenient = planner()
        .profile(work)
        .serial(Duration::from_millis(300))
        .threshold(0.6)
        .plan()
        .unwrap();
    assert!(lenient.parallel, "{lenient}");
}

#[test]
fn the_pilot_profiles_real_items() {
    // Eight items, so the pilot runs all of them (it always times at least eight): seven wait
    // 1 ms and the sixth waits 200 ms. Sleeps only set lower bounds on the times measured.
    let naps_ms: Vec<u64> = vec![1, 1, 1, 1, 1, 200, 1, 1];
    let plan = Planner::new()
        .pilot(&naps_ms, |ms: u64| {
            std::thread::sleep(Duration::from_millis(ms))
        })
        .plan()
        .unwrap();
    let profile = &plan.workload;
    assert_eq!(profile.items, 8);
    assert!(
        profile.mean_item >= Duration::from_millis(207) / 8,
        "{profile:?}"
    );
    assert!(
        profile.largest_item >= Duration::from_millis(200),
        "{profile:?}"
    );
    assert!(
        (profile.largest_position - 5.0 / 7.0).abs() < 1e-12,
        "{profile:?}"
    );
    assert!(profile.cpu_share < 0.5, "sleeping items wait: {profile:?}");
    // With weights, the heaviest item is found from the weights alone: here the last one.
    let items: Vec<u64> = (0..500).collect();
    let weighted = Planner::new()
        .pilot_weighted(&items, |x: u64| x + 1, |&x| 1.0 + x as f64)
        .plan()
        .unwrap();
    assert!((weighted.workload.largest_position - 1.0).abs() < 1e-12);
}

#[test]
fn with_plan_runs_any_pool_with_the_planned_chunk_size() {
    let plan = planner()
        .profile(WorkloadProfile::uniform(10_000, Duration::from_micros(50)))
        .plan()
        .unwrap();
    let pool = ThreadPool::new(2).unwrap();
    let sum: u64 = pool
        .map(|x: u64| x, 0..10_000)
        .with_plan(&plan)
        .sum::<Result<u64, _>>()
        .unwrap();
    assert_eq!(sum, 49_995_000);
}

#[test]
fn feedback_compares_and_refits() {
    let mut plan = planner()
        .profile(WorkloadProfile::uniform(
            100_000,
            Duration::from_micros(100),
        ))
        .plan()
        .unwrap();
    plan.record_serial(Duration::from_secs(10));
    let feedback = plan.record(2, Duration::from_secs(8)).unwrap();
    assert!((feedback.measured_speedup - 1.25).abs() < 1e-9);
    assert!((feedback.serial_fraction.unwrap() - 0.6).abs() < 1e-9);
    assert!(feedback.error > 0.0, "the model expected more than 1.25x");
    assert!(!plan.parallel, "1.25x on 2 workers is below the threshold");
    assert_eq!(plan.fit, Some(feedback.fit));
    assert!(matches!(
        plan.record(0, Duration::from_secs(1)),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn bad_input_is_a_clear_error() {
    let invalid = |r: Result<parexec::Plan, Error>| matches!(r, Err(Error::InvalidArgument(_)));
    let uniform = || WorkloadProfile::uniform(10, Duration::from_millis(1));
    assert!(invalid(Planner::new().plan()));
    let empty: Vec<u32> = Vec::new();
    assert!(invalid(Planner::new().pilot(&empty, |x: u32| x).plan()));
    assert!(invalid(
        planner().profile(uniform()).threshold(f64::NAN).plan()
    ));
    assert!(invalid(planner().profile(uniform()).threshold(-1.0).plan()));
    assert!(invalid(planner().profile(uniform()).max_workers(0).plan()));
    assert!(invalid(planner().profile(uniform()).executors(&[]).plan()));
    assert!(invalid(
        Planner::new()
            .profile(WorkloadProfile::uniform(0, Duration::from_millis(1)))
            .plan()
    ));
    let items = [1_u32, 2, 3];
    assert!(invalid(
        Planner::new()
            .pilot_weighted(&items, |x: u32| x, |_| f64::INFINITY)
            .plan()
    ));
}
