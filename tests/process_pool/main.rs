//! Integration tests of `ProcessPool`, including one test per fault it must survive.
//!
//! Workers re-execute this binary and serve before its `main`. The hook that silences
//! deliberate panics is installed by a constructor that runs before parexec's, so workers have
//! it too. `main` calls the optional `parexec::init()` and hands over to `libtest-mimic`, which
//! speaks libtest's command line for `cargo test` and `cargo nextest run`.
//!
//! After each test, the harness checks that the test's pools left no child process behind.
//! Tests run one at a time for that reason. Where `/proc` is missing, that check is skipped
//! with a note, and the tests that cannot work without `/proc` report themselves ignored.

mod api;
mod capture;
#[path = "../support/census.rs"]
mod census;
#[path = "../support/deliberate.rs"]
mod deliberate;
mod faults;
mod quiet;
mod resize;
mod tasks;

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use parexec::ProcessPool;

/// `(name, test)` pairs, named after the functions.
macro_rules! tests {
    ($($module:ident::$test:ident),* $(,)?) => {
        [$((stringify!($test), $module::$test as fn())),*]
    };
}

// SAFETY: before `main`, this only installs a panic hook (a static behind a lock), which needs
// nothing Rust's runtime sets up in `main`. It runs before parexec's constructor (which has
// the `late` priority) serves a worker, so workers install the hook too, below the one with
// which parexec records panic locations.
#[ctor::ctor(unsafe)]
fn silence_deliberate_panics() {
    deliberate::silence();
}

fn main() {
    parexec::init();
    if std::env::var_os(faults::CRASHING_PARENT).is_some() {
        faults::crash_with_busy_workers();
    }
    let mut args = Arguments::from_args();
    // Each test counts this process's children afterwards; a test running beside it would
    // have children of its own.
    args.test_threads = Some(1);
    let have_proc = census::Census::take().is_some();
    if !have_proc && !args.list {
        eprintln!("note: /proc is not available: leftover child processes are not checked");
    }
    let anywhere = tests![
        api::submit_and_map_return_correct_results,
        api::one_generic_pipeline_runs_on_both_pools,
        api::collect_vec_moves_results_in_and_returns_the_first_error,
        faults::a_panic_fails_only_its_task_and_the_worker_survives,
        faults::abort_fails_only_its_task,
        faults::a_fault_in_a_burst_of_short_tasks_fails_only_itself,
        faults::segfault_fails_only_its_task,
        faults::exit_code_fails_only_its_task,
        faults::sigkill_from_outside_fails_only_the_running_task,
        faults::a_runaway_task_times_out_and_the_worker_is_replaced,
        faults::an_unserializable_argument_fails_at_once,
        faults::an_unserializable_result_fails_only_its_task,
        api::a_100_mb_payload_travels_both_ways,
        api::printing_tasks_do_not_corrupt_the_protocol,
        faults::a_malformed_frame_replaces_the_worker,
        faults::an_oversized_argument_is_rejected_at_once,
        faults::retry_policy_reruns_a_task_whose_worker_died,
        api::workers_are_recycled_after_max_tasks,
        api::initializer_and_env_reach_every_worker,
        api::a_panicking_initializer_fails_the_build,
        api::lazy_pools_start_workers_with_the_first_task,
        api::cancelled_tasks_never_run,
        api::shutdown_finishes_queued_work_then_refuses,
        api::a_map_chunk_with_failures_keeps_the_other_items,
        api::stats_count_tasks_and_time,
        faults::concurrent_submitters_survive_repeated_kills,
        quiet::noisy_tests_leave_the_log_clean,
        resize::growing_during_a_map_starts_workers_at_once,
        resize::a_shrink_and_a_regrow_before_the_workers_leave,
        resize::zero_workers_is_an_invalid_argument_and_a_shut_down_pool_refuses,
    ];
    let needs_proc = tests![
        api::shutdown_reaps_every_worker,
        faults::workers_exit_when_the_parent_crashes,
        resize::shrinking_during_a_map_keeps_every_result_and_reaps_the_surplus_workers,
    ];
    let trials = anywhere
        .into_iter()
        .map(|(name, test)| (name, test, false))
        .chain(
            needs_proc
                .into_iter()
                .map(|(name, test)| (name, test, true)),
        )
        .map(|(name, test, needs)| {
            Trial::ignorable_test(name, move || {
                if needs && !have_proc {
                    return Ok(Completion::ignored_with("needs /proc"));
                }
                run_and_check_children(test)
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Runs `test`, then fails it if its pools left a child process behind (checked even when the
/// test itself failed, so that one failure cannot hide a leak).
fn run_and_check_children(test: fn()) -> Result<Completion, Failed> {
    let outcome = catch_unwind(AssertUnwindSafe(test));
    let left = census::children().unwrap_or_default();
    if let Err(panic) = outcome {
        if !left.is_empty() {
            eprintln!("the failed test also left child processes behind: {left:?}");
        }
        resume_unwind(panic);
    }
    if left.is_empty() {
        Ok(Completion::Completed)
    } else {
        Err(format!("child processes left behind: {left:?}").into())
    }
}

fn pool(workers: usize) -> ProcessPool {
    ProcessPool::new(workers).expect("the pool starts")
}

/// Polls `done` for a bounded time; returns whether it held. Not a timing assertion: it
/// returns as soon as `done` holds.
pub fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}
