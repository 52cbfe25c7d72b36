//! Integration tests of `ProcessPool`, including one test per fault it must survive.
//!
//! Workers re-execute this binary, so it has `harness = false` and its own `main`, which calls
//! `parexec::init()` before anything else. The small harness below speaks enough of libtest's
//! command line for `cargo test` (run all, or filter by substring) and for `cargo nextest`
//! (`--list --format terse`, `--exact NAME`).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use parexec::{Error, Executor, ProcessPool, ThreadPool, WorkerExit, as_completed};
use serde::{Deserialize, Serialize};

const TESTS: &[(&str, fn())] = &[
    (
        "submit_and_map_return_correct_results",
        submit_and_map_return_correct_results,
    ),
    (
        "one_generic_pipeline_runs_on_both_pools",
        one_generic_pipeline_runs_on_both_pools,
    ),
    (
        "collect_vec_moves_results_in_and_returns_the_first_error",
        collect_vec_moves_results_in_and_returns_the_first_error,
    ),
    (
        "a_panic_fails_only_its_task_and_the_worker_survives",
        a_panic_fails_only_its_task_and_the_worker_survives,
    ),
    ("abort_fails_only_its_task", abort_fails_only_its_task),
    ("segfault_fails_only_its_task", segfault_fails_only_its_task),
    (
        "exit_code_fails_only_its_task",
        exit_code_fails_only_its_task,
    ),
    (
        "sigkill_from_outside_fails_only_the_running_task",
        sigkill_from_outside_fails_only_the_running_task,
    ),
    (
        "a_runaway_task_times_out_and_the_worker_is_replaced",
        a_runaway_task_times_out_and_the_worker_is_replaced,
    ),
    (
        "an_unserializable_argument_fails_at_once",
        an_unserializable_argument_fails_at_once,
    ),
    (
        "an_unserializable_result_fails_only_its_task",
        an_unserializable_result_fails_only_its_task,
    ),
    (
        "a_100_mb_payload_travels_both_ways",
        a_100_mb_payload_travels_both_ways,
    ),
    (
        "printing_tasks_do_not_corrupt_the_protocol",
        printing_tasks_do_not_corrupt_the_protocol,
    ),
    (
        "a_malformed_frame_replaces_the_worker",
        a_malformed_frame_replaces_the_worker,
    ),
    (
        "an_oversized_argument_is_rejected_at_once",
        an_oversized_argument_is_rejected_at_once,
    ),
    (
        "retry_policy_reruns_a_task_whose_worker_died",
        retry_policy_reruns_a_task_whose_worker_died,
    ),
    (
        "workers_are_recycled_after_max_tasks",
        workers_are_recycled_after_max_tasks,
    ),
    (
        "initializer_and_env_reach_every_worker",
        initializer_and_env_reach_every_worker,
    ),
    (
        "a_panicking_initializer_fails_the_build",
        a_panicking_initializer_fails_the_build,
    ),
    (
        "lazy_pools_start_workers_with_the_first_task",
        lazy_pools_start_workers_with_the_first_task,
    ),
    ("cancelled_tasks_never_run", cancelled_tasks_never_run),
    (
        "shutdown_finishes_queued_work_then_refuses",
        shutdown_finishes_queued_work_then_refuses,
    ),
    (
        "a_map_chunk_with_failures_keeps_the_other_items",
        a_map_chunk_with_failures_keeps_the_other_items,
    ),
    ("stats_count_tasks_and_time", stats_count_tasks_and_time),
    (
        "workers_exit_when_the_parent_crashes",
        workers_exit_when_the_parent_crashes,
    ),
    (
        "concurrent_submitters_survive_repeated_kills",
        concurrent_submitters_survive_repeated_kills,
    ),
];

/// Set in a child copy of this binary that plays a parent crashing with busy workers.
const CRASHING_PARENT: &str = "PAREXEC_TEST_CRASHING_PARENT";

fn main() {
    parexec::init();
    if std::env::var_os(CRASHING_PARENT).is_some() {
        crash_with_busy_workers();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().any(|a| a == name);
    let mut filters = Vec::new();
    let mut skip_value = false;
    for arg in &args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match arg.as_str() {
            "--format" | "--test-threads" | "--color" | "--logfile" | "--skip" | "-Z" => {
                skip_value = true
            }
            a if a.starts_with('-') => {}
            a => filters.push(a.to_owned()),
        }
    }
    if flag("--list") {
        if !flag("--ignored") {
            for (name, _) in TESTS {
                println!("{name}: test");
            }
        }
        return;
    }
    let selected: Vec<_> = TESTS
        .iter()
        .filter(|_| !flag("--ignored"))
        .filter(|(name, _)| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if flag("--exact") {
                        name == f
                    } else {
                        name.contains(f.as_str())
                    }
                })
        })
        .collect();
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in selected {
        let outcome = catch_unwind(AssertUnwindSafe(test));
        let leftover = children();
        if outcome.is_ok() && leftover.is_empty() {
            println!("test {name} ... ok");
            passed += 1;
        } else {
            println!("test {name} ... FAILED (child processes left: {leftover:?})");
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}

/// Pids of this process's children (running or zombie), from /proc.
fn children() -> Vec<u32> {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may contain spaces; the fields after it do not.
            let after_name = &stat[stat.rfind(')')? + 2..];
            let ppid: u32 = after_name.split(' ').nth(1)?.parse().ok()?;
            (ppid == me).then_some(pid)
        })
        .collect()
}

fn pool(workers: usize) -> ProcessPool {
    ProcessPool::new(workers).expect("the pool starts")
}

// ---- task functions: plain fns, so they travel as code offsets ----

fn square(x: u64) -> u64 {
    x * x
}

fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

fn panics_on_13(x: u64) -> u64 {
    assert!(x != 13, "thirteen is unlucky");
    x
}

fn abort(_: ()) -> u64 {
    std::process::abort()
}

fn segfault(_: ()) -> u64 {
    // SAFETY: changing a signal disposition and raising a signal have no memory effects.
    // Rust's own SIGSEGV handler (for stack overflows) would return from a raised signal, so
    // restore the default action first; then the signal ends the process as a real fault does.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    unreachable!("SIGSEGV ends the process")
}

fn exit_3(_: ()) -> u64 {
    std::process::exit(3)
}

fn sleep_forever(_: ()) -> u64 {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn spin_forever(_: ()) -> u64 {
    loop {
        std::hint::spin_loop();
    }
}

fn print_and_square(x: u64) -> u64 {
    println!("a task prints {x} to stdout: frame-like bytes \u{0}\u{0}\u{0}\u{ff}");
    eprintln!("and {x} to stderr");
    x * x
}

fn checksum(text: String) -> (usize, u64, String) {
    let sum = text.bytes().map(u64::from).sum();
    (text.len(), sum, text)
}

fn write_garbage_to_the_protocol(_: ()) -> u64 {
    let garbage = [0xff_u8; 16];
    // SAFETY: fd 3 is the worker's protocol socket; writing bytes to it is exactly the fault
    // under test, and the buffer is valid for its length.
    unsafe { libc::write(3, garbage.as_ptr().cast(), garbage.len()) };
    std::thread::sleep(Duration::from_secs(30));
    0
}

fn pid(_: ()) -> u32 {
    std::process::id()
}

fn env_and_init(_: ()) -> (Option<String>, bool) {
    (
        std::env::var("PAREXEC_TEST_MODE").ok(),
        INITIALIZED.load(std::sync::atomic::Ordering::SeqCst),
    )
}

static INITIALIZED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn initializer() {
    INITIALIZED.store(true, std::sync::atomic::Ordering::SeqCst);
}

fn bad_initializer() {
    panic!("cannot initialize");
}

/// Serializes only when `ok` is set.
#[derive(Debug, Deserialize)]
struct Fragile {
    ok: bool,
}

impl Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.ok {
            serializer.serialize_bool(true)
        } else {
            Err(serde::ser::Error::custom("Fragile refuses to serialize"))
        }
    }
}

/// Serializes fine, but its `Deserialize` panics.
#[derive(Debug, Serialize)]
struct Explosive;

impl<'de> Deserialize<'de> for Explosive {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        panic!("Explosive refuses to deserialize")
    }
}

fn make_explosive(_: ()) -> Explosive {
    Explosive
}

fn fragile_len(f: Fragile) -> bool {
    f.ok
}

fn make_fragile(ok: bool) -> Fragile {
    Fragile { ok }
}

fn dies_once(marker: String) -> u64 {
    if std::fs::metadata(&marker).is_err() {
        std::fs::write(&marker, b"died here once").unwrap();
        std::process::abort();
    }
    7
}

fn touch(marker: String) -> u64 {
    std::fs::write(&marker, b"ran").unwrap();
    1
}

fn temp_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("parexec-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

/// Submits 20 good tasks around a faulty one and checks that exactly the faulty one failed.
fn only_the_faulty_task_fails(fault: fn(()) -> u64) -> Error {
    let pool = pool(2);
    let before: Vec<_> = (0..10).map(|x| pool.submit(slow_square, x)).collect();
    let faulty = pool.submit(fault, ());
    let after: Vec<_> = (10..20).map(|x| pool.submit(slow_square, x)).collect();
    for (x, future) in (0..20).zip(before.into_iter().chain(after)) {
        assert_eq!(future.result().expect("a healthy task"), x * x);
    }
    let error = faulty.result().expect_err("the faulty task fails");
    // The pool is still whole: both workers serve.
    let again: Vec<_> = (0..4).map(|x| pool.submit(square, x)).collect();
    for (x, f) in (0..4).zip(again) {
        assert_eq!(f.result().unwrap(), x * x);
    }
    assert!(
        pool.stats().worker_restarts >= 1,
        "the dead worker was replaced"
    );
    error
}

fn assert_died(error: Error, expected: WorkerExit) {
    match error {
        Error::WorkerDied { pid, exit } => {
            assert!(pid > 0);
            assert_eq!(exit, expected);
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
}

// ---- tests ----

fn submit_and_map_return_correct_results() {
    let pool = pool(2);
    assert_eq!(pool.submit(square, 12).result().unwrap(), 144);
    let out: Vec<u64> = pool
        .map(square, 0..10_000)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, (0..10_000).map(|x| x * x).collect::<Vec<_>>());
    let futures: Vec<_> = (0..50).map(|x| pool.submit(square, x)).collect();
    let mut sum = 0;
    for done in as_completed(futures) {
        sum += done.result().unwrap();
    }
    assert_eq!(sum, (0..50).map(|x| x * x).sum::<u64>());
}

fn collect_vec_moves_results_in_and_returns_the_first_error() {
    let pool = pool(2);
    let out = pool.map(square, 0..10_000).collect_vec().unwrap();
    assert_eq!(out, (0..10_000).map(|x| x * x).collect::<Vec<_>>());
    let failed = pool.map(panics_on_13, 0..100).chunksize(7).collect_vec();
    match failed {
        Err(Error::Panicked { message, .. }) => assert!(message.contains("thirteen"), "{message}"),
        other => panic!("expected the panic of item 13, got {other:?}"),
    }
    // The pool keeps serving after the failed collection.
    assert_eq!(pool.submit(square, 3).result().unwrap(), 9);
}

fn sum_of_squares<E: Executor>(executor: &E, n: u64) -> Result<u64, Error> {
    executor.map(square, 0..n).sum()
}

fn one_generic_pipeline_runs_on_both_pools() {
    let threads = ThreadPool::new(2).unwrap();
    let processes = pool(2);
    assert_eq!(
        sum_of_squares(&threads, 1000).unwrap(),
        sum_of_squares(&processes, 1000).unwrap()
    );
    assert_eq!(processes.kind(), parexec::ExecutorKind::Processes);
}

fn a_panic_fails_only_its_task_and_the_worker_survives() {
    let pool = pool(1);
    let pid_before = pool.worker_pids();
    let results: Vec<_> = (10..16).map(|x| pool.submit(panics_on_13, x)).collect();
    for (x, future) in (10..16).zip(results) {
        match future.result() {
            Ok(v) => assert_eq!(v, x),
            Err(Error::Panicked { message, location }) => {
                assert_eq!(x, 13);
                assert_eq!(message, "thirteen is unlucky");
                assert!(location.unwrap().contains("process_pool.rs"));
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        pool.worker_pids(),
        pid_before,
        "the worker survived the panic"
    );
}

fn abort_fails_only_its_task() {
    assert_died(
        only_the_faulty_task_fails(abort),
        WorkerExit::Signal(libc::SIGABRT),
    );
}

fn segfault_fails_only_its_task() {
    assert_died(
        only_the_faulty_task_fails(segfault),
        WorkerExit::Signal(libc::SIGSEGV),
    );
}

fn exit_code_fails_only_its_task() {
    assert_died(only_the_faulty_task_fails(exit_3), WorkerExit::Code(3));
}

fn sigkill_from_outside_fails_only_the_running_task() {
    let pool = pool(1);
    let victim = pool.worker_pids()[0];
    let running = pool.submit(sleep_forever, ());
    let queued: Vec<_> = (0..10).map(|x| pool.submit(square, x)).collect();
    while !running.is_running() {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Give the worker time to pick the task up; the queued ones sit behind it.
    std::thread::sleep(Duration::from_millis(100));
    // SAFETY: sending a signal to a process has no memory effects in this one.
    assert_eq!(
        unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) },
        0
    );
    match running.result() {
        Err(Error::WorkerDied { pid, exit }) => {
            assert_eq!(pid, victim);
            assert_eq!(exit, WorkerExit::Signal(libc::SIGKILL));
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
    for (x, future) in (0..10).zip(queued) {
        assert_eq!(
            future.result().unwrap(),
            x * x,
            "queued tasks are re-sent, not failed"
        );
    }
    assert_ne!(pool.worker_pids(), vec![victim]);
}

fn a_runaway_task_times_out_and_the_worker_is_replaced() {
    let pool = ProcessPool::builder()
        .workers(2)
        .task_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let before: Vec<_> = (0..5).map(|x| pool.submit(slow_square, x)).collect();
    let runaway = pool.submit(spin_forever, ());
    let after: Vec<_> = (5..10).map(|x| pool.submit(slow_square, x)).collect();
    assert!(matches!(runaway.result(), Err(Error::Timeout)));
    for (x, future) in (0..10).zip(before.into_iter().chain(after)) {
        assert_eq!(future.result().unwrap(), x * x);
    }
    assert!(pool.stats().worker_restarts >= 1);
}

fn an_unserializable_argument_fails_at_once() {
    let pool = pool(1);
    let good = pool.submit(fragile_len, Fragile { ok: true });
    let bad = pool.submit(fragile_len, Fragile { ok: false });
    assert!(bad.is_done(), "fails at once, without a round trip");
    assert!(matches!(bad.result(), Err(Error::Serialization(_))));
    assert!(good.result().unwrap());
    let items = vec![
        Fragile { ok: true },
        Fragile { ok: false },
        Fragile { ok: true },
    ];
    let mapped: Vec<_> = pool.map(fragile_len, items).chunksize(3).collect();
    assert!(matches!(mapped[0], Ok(true)));
    assert!(matches!(mapped[1], Err(Error::Serialization(_))));
    assert!(matches!(mapped[2], Ok(true)));
}

fn an_unserializable_result_fails_only_its_task() {
    let pool = pool(1);
    let results: Vec<_> = [true, false, true]
        .into_iter()
        .map(|ok| pool.submit(make_fragile, ok))
        .collect();
    let outcomes: Vec<_> = results.into_iter().map(|f| f.result()).collect();
    // A `Fragile` that serializes decodes back from `true`.
    assert!(outcomes[0].as_ref().is_ok_and(|f| f.ok));
    assert!(
        matches!(outcomes[1], Err(Error::Serialization(_))),
        "{:?}",
        outcomes[1]
    );
    assert!(outcomes[2].as_ref().is_ok_and(|f| f.ok));
    // A result whose decoding panics in the parent fails only its own future too.
    let explosive = pool.submit(make_explosive, ());
    let fine = pool.submit(square, 6);
    assert!(matches!(explosive.result(), Err(Error::Serialization(_))));
    assert_eq!(fine.result().unwrap(), 36);
}

fn a_100_mb_payload_travels_both_ways() {
    let pool = pool(2);
    let text: String = "parexec!".repeat(100 << 20 >> 3);
    let expected_sum: u64 = text.bytes().map(u64::from).sum();
    let small = pool.submit(square, 3);
    let (len, sum, back) = pool.submit(checksum, text.clone()).result().unwrap();
    assert_eq!((len, sum), (100 << 20, expected_sum));
    assert!(back == text);
    assert_eq!(small.result().unwrap(), 9);
}

fn printing_tasks_do_not_corrupt_the_protocol() {
    let pool = pool(2);
    let out: Vec<u64> = pool
        .map(print_and_square, 0..200)
        .chunksize(7)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, (0..200).map(|x| x * x).collect::<Vec<_>>());
}

fn a_malformed_frame_replaces_the_worker() {
    let pool = pool(1);
    let victim = pool.worker_pids()[0];
    let corrupt = pool.submit(write_garbage_to_the_protocol, ());
    let queued: Vec<_> = (0..5).map(|x| pool.submit(square, x)).collect();
    match corrupt.result() {
        Err(Error::Protocol(message)) => {
            assert!(message.contains("exceeds the maximum"), "{message}")
        }
        other => panic!("expected a protocol error, got {other:?}"),
    }
    for (x, future) in (0..5).zip(queued) {
        assert_eq!(future.result().unwrap(), x * x);
    }
    assert_ne!(pool.worker_pids(), vec![victim]);
}

fn an_oversized_argument_is_rejected_at_once() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame_size(1024)
        .build()
        .unwrap();
    let big = pool.submit(checksum, "x".repeat(4096));
    assert!(matches!(big.result(), Err(Error::InvalidArgument(_))));
    assert_eq!(pool.submit(square, 5).result().unwrap(), 25);
}

fn retry_policy_reruns_a_task_whose_worker_died() {
    let marker = temp_path("dies-once");
    let retrying = ProcessPool::builder()
        .workers(1)
        .retry_worker_deaths(1)
        .build()
        .unwrap();
    assert_eq!(
        retrying.submit(dies_once, marker.clone()).result().unwrap(),
        7
    );
    let _ = std::fs::remove_file(marker);
    let no_retry = pool(1);
    let marker = temp_path("dies-once-no-retry");
    assert!(matches!(
        no_retry.submit(dies_once, marker.clone()).result(),
        Err(Error::WorkerDied { .. })
    ));
    let _ = std::fs::remove_file(marker);
}

fn workers_are_recycled_after_max_tasks() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_tasks_per_worker(3)
        .build()
        .unwrap();
    let pids: Vec<u32> = (0..9)
        .map(|_| pool.submit(pid, ()).result().unwrap())
        .collect();
    assert_eq!(pids[0], pids[2]);
    assert_ne!(pids[2], pids[3]);
    assert_ne!(pids[5], pids[6]);
    let mut distinct = pids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{pids:?}");
}

fn initializer_and_env_reach_every_worker() {
    let pool = ProcessPool::builder()
        .workers(2)
        .env("PAREXEC_TEST_MODE", "fast")
        .initializer(initializer)
        .build()
        .unwrap();
    let seen: Vec<_> = (0..8).map(|_| pool.submit(env_and_init, ())).collect();
    for future in seen {
        assert_eq!(future.result().unwrap(), (Some("fast".to_owned()), true));
    }
}

fn a_panicking_initializer_fails_the_build() {
    match ProcessPool::builder()
        .workers(2)
        .initializer(bad_initializer)
        .build()
    {
        Err(Error::Initializer(message)) => {
            assert!(message.contains("cannot initialize"), "{message}")
        }
        other => panic!("expected an initializer error, got {other:?}"),
    }
}

fn lazy_pools_start_workers_with_the_first_task() {
    let pool = ProcessPool::builder().workers(2).lazy().build().unwrap();
    assert!(pool.worker_pids().is_empty());
    assert_eq!(pool.submit(square, 4).result().unwrap(), 16);
    assert!(!pool.worker_pids().is_empty());
}

fn cancelled_tasks_never_run() {
    let pool = pool(1);
    let blocker = pool.submit(slow_square, 1);
    // Fill the worker's window so the next task stays queued in the parent.
    let fillers: Vec<_> = (0..20).map(|x| pool.submit(slow_square, x)).collect();
    let marker = temp_path("cancelled");
    let victim = pool.submit(touch, marker.clone());
    assert!(victim.cancel(), "still queued");
    assert!(matches!(victim.result(), Err(Error::Cancelled)));
    blocker.result().unwrap();
    for f in fillers {
        f.result().unwrap();
    }
    pool.shutdown();
    assert!(
        std::fs::metadata(&marker).is_err(),
        "the cancelled task never ran"
    );
    assert!(pool.stats().cancelled >= 1);
}

fn shutdown_finishes_queued_work_then_refuses() {
    let pool = pool(2);
    let queued: Vec<_> = (0..20).map(|x| pool.submit(slow_square, x)).collect();
    pool.shutdown();
    for (x, future) in (0..20).zip(queued) {
        assert_eq!(future.result().unwrap(), x * x);
    }
    assert!(matches!(
        pool.submit(square, 1).result(),
        Err(Error::Shutdown)
    ));
    assert!(children().is_empty(), "shutdown reaped every worker");
    pool.shutdown();
}

fn a_map_chunk_with_failures_keeps_the_other_items() {
    let pool = pool(2);
    let out: Vec<_> = pool.map(panics_on_13, 0..40).chunksize(8).collect();
    for (x, result) in (0..40).zip(out) {
        match result {
            Ok(v) => assert_eq!(v, x),
            Err(Error::Panicked { .. }) => assert_eq!(x, 13),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let unordered: u64 = pool
        .map(square, 0..100)
        .unordered()
        .map(|(_, r)| r.unwrap())
        .sum();
    assert_eq!(unordered, (0..100).map(|x| x * x).sum());
}

fn stats_count_tasks_and_time() {
    let pool = pool(2);
    let futures: Vec<_> = (0..10).map(|x| pool.submit(slow_square, x)).collect();
    let failing = pool.submit(panics_on_13, 13);
    for f in futures {
        f.result().unwrap();
    }
    let _ = failing.result();
    let stats = pool.stats();
    assert_eq!(stats.submitted, 11);
    assert_eq!(stats.completed, 10);
    assert_eq!(stats.failed, 1);
    assert!(stats.busy >= Duration::from_millis(200), "{stats:?}");
    assert!(stats.transfer > Duration::ZERO);
}

fn crash_with_busy_workers() -> ! {
    let pool = pool(2);
    let busy = pool.submit(sleep_forever, ());
    while !busy.is_running() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let pids: Vec<String> = pool.worker_pids().iter().map(u32::to_string).collect();
    println!("worker pids: {}", pids.join(","));
    std::io::Write::flush(&mut std::io::stdout()).unwrap();
    std::process::abort()
}

/// Whether `pid` is still a live process (a zombie waiting for its reaper counts as gone).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rfind(')').map(|end| stat[end + 2..].starts_with('Z')))
        .is_some_and(|zombie| !zombie)
}

fn workers_exit_when_the_parent_crashes() {
    use std::io::BufRead;
    let mut parent = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CRASHING_PARENT, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(parent.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .find(|line| line.starts_with("worker pids: "));
    // Reap the parent before any assertion, so a failure leaves no zombie behind.
    assert!(!parent.wait().unwrap().success(), "the parent aborted");
    let line = line.expect("the crashing parent reports its workers");
    let pids: Vec<u32> = line["worker pids: ".len()..]
        .split(',')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    // Waiting is bounded only so that a regression fails instead of hanging.
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|&pid| is_alive(pid)) {
        assert!(
            std::time::Instant::now() < give_up,
            "workers outlived their parent: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn short_nap(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(200));
    x + 1
}

fn concurrent_submitters_survive_repeated_kills() {
    let pool = ProcessPool::builder()
        .workers(2)
        .retry_worker_deaths(u32::MAX)
        .build()
        .unwrap();
    let kills = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..4_u64)
            .map(|t| {
                let pool = &pool;
                scope.spawn(move || {
                    let futures: Vec<_> = (0..300)
                        .map(|i| pool.submit(short_nap, t * 1000 + i))
                        .collect();
                    for (i, future) in (0..300).zip(futures) {
                        assert_eq!(future.result().unwrap(), t * 1000 + i + 1);
                    }
                    let mapped: Vec<u64> = pool
                        .map(short_nap, 0..200)
                        .chunksize(5)
                        .collect::<Result<_, _>>()
                        .unwrap();
                    assert_eq!(mapped, (1..201).collect::<Vec<_>>());
                })
            })
            .collect();
        while !submitters.iter().all(|s| s.is_finished()) {
            if let Some(&victim) = pool.worker_pids().first() {
                // SAFETY: sending a signal to a process has no memory effects in this one.
                if unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) } == 0 {
                    kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(15));
        }
        for submitter in submitters {
            submitter.join().unwrap();
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
    assert!(stats.worker_restarts >= 1 || kills.into_inner() == 0);
}
