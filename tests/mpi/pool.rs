//! `MpiPool` under `mpirun`: `.ci/mpi-tests` starts this program with 3 and 4 ranks, over
//! shared memory and over TCP, and once per fault scenario (the first argument names it).
//!
//! Without `mpirun` (as `cargo test --features mpi` runs it) it checks that a single-rank
//! start gives a clear error at once. Rank 0 prints one `ok`/`FAILED` line per check and
//! exits non-zero if any failed; the other ranks become workers inside `parexec::init()`.

use std::time::{Duration, Instant};

use parexec::{
    Error, Executor, ExecutorKind, MpiPool, Planner, ReturnWhen, WorkerExit, as_completed, wait,
};

type Check = (&'static str, fn(&MpiPool) -> Result<(), String>);

const CHECKS: &[Check] = &[
    (
        "submit_returns_results_pipelined",
        submit_returns_results_pipelined,
    ),
    (
        "map_is_ordered_chunked_and_unordered",
        map_is_ordered_chunked_and_unordered,
    ),
    (
        "as_completed_and_wait_see_every_future",
        as_completed_and_wait_see_every_future,
    ),
    (
        "a_panic_names_its_rank_and_host",
        a_panic_names_its_rank_and_host,
    ),
    (
        "one_generic_pipeline_runs_unchanged",
        one_generic_pipeline_runs_unchanged,
    ),
    (
        "workers_are_ranks_times_threads",
        workers_are_ranks_times_threads,
    ),
    (
        "a_second_open_pool_is_refused",
        a_second_open_pool_is_refused,
    ),
    ("the_planner_offers_mpi", the_planner_offers_mpi),
    (
        "idle_worker_ranks_use_under_5_percent",
        idle_worker_ranks_use_under_5_percent,
    ),
];

fn square(x: u64) -> u64 {
    x * x
}

fn panics_on_13(x: u64) -> u64 {
    assert!(x != 13, "unlucky {x}");
    x
}

fn host_and_pid(_: ()) -> (String, u32) {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    (host.trim().to_owned(), std::process::id())
}

fn sleep_ms(ms: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    ms
}

fn abort(_: ()) {
    std::process::abort()
}

fn segfault(_: ()) {
    // SAFETY: changing a signal disposition and raising a signal have no memory effects.
    // Rust's own SIGSEGV handler (for stack overflows) would return from a raised signal, so
    // restore the default action first; then the signal ends the process as a real fault does.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

fn submit_returns_results_pipelined(pool: &MpiPool) -> Result<(), String> {
    let futures: Vec<_> = (0..2000).map(|i| pool.submit(square, i)).collect();
    for (i, future) in futures.into_iter().enumerate() {
        let got = future.result().map_err(|e| e.to_string())?;
        check(got == (i * i) as u64, || format!("task {i} returned {got}"))?;
    }
    let stats = pool.stats();
    check(stats.completed >= 2000 && stats.failed == 0, || {
        format!("{stats:?}")
    })
}

fn map_is_ordered_chunked_and_unordered(pool: &MpiPool) -> Result<(), String> {
    let expected: Vec<u64> = (0..100_000).map(square).collect();
    let auto: Vec<u64> = pool
        .map(square, 0..100_000)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    check(auto == expected, || {
        "automatic chunks: wrong or out of order".into()
    })?;
    let chunked: Vec<u64> = pool
        .map(square, 0..1001)
        .chunksize(7)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    check(chunked[..] == expected[..1001], || {
        "chunks of 7: wrong or out of order".into()
    })?;
    let mut unordered: Vec<(usize, u64)> = pool
        .map(sleep_ms, (0..40).map(|i| i % 3))
        .chunksize(1)
        .unordered()
        .map(|(i, r)| r.map(|v| (i, v)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    unordered.sort_unstable();
    check(
        unordered.iter().all(|&(i, v)| v == (i % 3) as u64) && unordered.len() == 40,
        || format!("unordered: {unordered:?}"),
    )
}

fn as_completed_and_wait_see_every_future(pool: &MpiPool) -> Result<(), String> {
    let futures: Vec<_> = (0..12).map(|i| pool.submit(sleep_ms, 12 - i)).collect();
    let mut seen: Vec<u64> = as_completed(futures)
        .map(|f| f.result().unwrap_or(999))
        .collect();
    seen.sort_unstable();
    check(seen == (1..=12).collect::<Vec<u64>>(), || {
        format!("as_completed saw {seen:?}")
    })?;
    let futures: Vec<_> = (0..6).map(|i| pool.submit(sleep_ms, i)).collect();
    let (done, pending) = wait(
        futures,
        ReturnWhen::AllCompleted,
        Some(Duration::from_secs(60)),
    );
    check(done.len() == 6 && pending.is_empty(), || {
        format!("wait: {} done, {} pending", done.len(), pending.len())
    })
}

fn a_panic_names_its_rank_and_host(pool: &MpiPool) -> Result<(), String> {
    match pool.submit(panics_on_13, 13).result() {
        Err(Error::Panicked { message, location }) => {
            check(
                message.starts_with("unlucky 13 (on rank ") && message.contains(", host "),
                || format!("message {message:?}"),
            )?;
            check(location.is_some_and(|l| l.contains("pool.rs")), || {
                "no location".into()
            })?;
        }
        other => return Err(format!("expected a panic, got {other:?}")),
    }
    let results: Vec<_> = pool.map(panics_on_13, 0..20).chunksize(5).collect();
    let failed: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r.is_err())
        .map(|(i, _)| i)
        .collect();
    check(failed == [13], || format!("items {failed:?} failed"))?;
    check(pool.submit(square, 3).result().ok() == Some(9), || {
        "the rank did not survive".into()
    })
}

fn sum_of_squares<E: Executor>(pool: &E, n: u64) -> Result<u64, Error> {
    pool.map(square, 0..n).sum()
}

fn one_generic_pipeline_runs_unchanged(pool: &MpiPool) -> Result<(), String> {
    let threads = parexec::ThreadPool::new(2).map_err(|e| e.to_string())?;
    let on_mpi = sum_of_squares(pool, 1000).map_err(|e| e.to_string())?;
    let on_threads = sum_of_squares(&threads, 1000).map_err(|e| e.to_string())?;
    check(
        on_mpi == on_threads && pool.kind() == ExecutorKind::Mpi,
        || format!("{on_mpi} != {on_threads}"),
    )
}

fn workers_are_ranks_times_threads(pool: &MpiPool) -> Result<(), String> {
    let ranks = pool.ranks();
    check(
        ranks.iter().all(|r| r.threads >= 1) && !ranks.is_empty(),
        || format!("{ranks:?}"),
    )?;
    check(
        pool.workers() == ranks.iter().map(|r| r.threads).sum::<usize>(),
        || "workers".into(),
    )?;
    // `mpirun --oversubscribe` binds no rank, so the worker ranks of this node share its
    // cores by default rather than each starting a thread per core.
    let (here, _) = host_and_pid(());
    let local: Vec<_> = ranks.iter().filter(|r| r.host == here).collect();
    let online = parexec::Cores::detect().online;
    check(
        !local.is_empty()
            && local.iter().map(|r| r.threads).sum::<usize>() <= online.max(local.len()),
        || format!("{online} cores online, yet by default {local:?}"),
    )?;
    let (host, pid) = pool
        .submit(host_and_pid, ())
        .result()
        .map_err(|e| e.to_string())?;
    check(ranks.iter().any(|r| r.pid == pid), || {
        format!("task ran in pid {pid} on {host}, not a worker rank")
    })
}

fn a_second_open_pool_is_refused(_: &MpiPool) -> Result<(), String> {
    match MpiPool::world() {
        Err(Error::Mpi(message)) if message.contains("another MpiPool") => Ok(()),
        other => Err(format!("expected a refusal, got {other:?}")),
    }
}

fn the_planner_offers_mpi(pool: &MpiPool) -> Result<(), String> {
    let costs = parexec::planner::Calibration::mpi_pool().map_err(|e| e.to_string())?;
    check(
        costs.kind == ExecutorKind::Mpi
            && costs.cluster == Some((pool.workers(), 1))
            && costs.chunk_overhead > Duration::ZERO
            && costs.startup_per_worker > Duration::ZERO
            && costs.transfer_ns_per_byte > 0.0,
        || format!("{costs:?}"),
    )?;
    let plan = Planner::new()
        .profile(parexec::planner::WorkloadProfile::uniform(
            100_000,
            Duration::from_millis(2),
        ))
        .machine(parexec::planner::Machine::with_cores(1))
        .plan()
        .map_err(|e| e.to_string())?;
    let report = plan.to_string();
    println!(
        "{}",
        report
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    check(plan.kind == ExecutorKind::Mpi && plan.parallel, || {
        format!("{costs:?}\n{report}")
    })?;
    check(report.contains("MPI job's"), || {
        format!("no MPI curve note in\n{report}")
    })
}

/// CPU time of a process on this host, all its threads, in seconds: `/proc/<pid>/stat` counts
/// in clock ticks (10 ms), too coarse for a few percent of a second, so the scheduler's
/// nanosecond counts of each thread are summed instead.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let nanos: u64 = threads
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Some(nanos as f64 * 1e-9)
}

fn idle_worker_ranks_use_under_5_percent(pool: &MpiPool) -> Result<(), String> {
    let here: Vec<u32> = pool
        .ranks()
        .iter()
        .map(|r| r.pid)
        .filter(|&p| cpu_seconds(p).is_some())
        .collect();
    check(!here.is_empty(), || "no worker rank on this host".into())?;
    std::thread::sleep(Duration::from_millis(200));
    let before: Vec<_> = here
        .iter()
        .map(|&p| cpu_seconds(p).unwrap_or(0.0))
        .collect();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let after: Vec<_> = here
        .iter()
        .map(|&p| cpu_seconds(p).unwrap_or(0.0))
        .collect();
    let seconds = began.elapsed().as_secs_f64();
    for ((pid, before), after) in here.iter().zip(before).zip(after) {
        let used = (after - before) / seconds;
        println!(
            "    idle worker rank pid {pid}: {:.2}% of a core",
            100.0 * used
        );
        check(used < 0.05, || {
            format!("pid {pid} used {:.1}% of a core", 100.0 * used)
        })?;
    }
    Ok(())
}

/// An isolated pool: an abort or a timeout fails only its task.
fn isolation() -> Result<(), String> {
    let pool = MpiPool::builder()
        .isolate()
        .threads_per_rank(1)
        .task_timeout(Duration::from_secs(2))
        .keep_workers()
        .build()
        .map_err(|e| e.to_string())?;
    for (name, task, signal) in [
        ("abort", abort as fn(()), libc::SIGABRT),
        ("segfault", segfault, libc::SIGSEGV),
    ] {
        match pool.submit(task, ()).result() {
            Err(Error::WorkerDied {
                exit: WorkerExit::Signal(s),
                ..
            }) if s == signal => {}
            other => {
                return Err(format!(
                    "{name}: expected WorkerDied by signal {signal}, got {other:?}"
                ));
            }
        }
    }
    match pool.submit(sleep_ms, 60_000).result() {
        Err(Error::Timeout) => {}
        other => return Err(format!("overrun: expected Timeout, got {other:?}")),
    }
    let out: Vec<u64> = pool
        .map(square, 0..500)
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    check(out[499] == 499 * 499, || "isolated map".into())?;
    match pool.submit(panics_on_13, 13).result() {
        Err(Error::Panicked { message, .. }) if message.contains("on rank") => Ok(()),
        other => Err(format!("isolated panic: {other:?}")),
    }
}

fn suite() -> bool {
    let mut failed = 0;
    let mut report = |name: &str, outcome: Result<(), String>| match outcome {
        Ok(()) => println!("check {name} ... ok"),
        Err(why) => {
            failed += 1;
            println!("check {name} ... FAILED: {why}");
        }
    };
    report("a_crash_in_isolation_mode_fails_only_its_task", isolation());
    match MpiPool::builder().keep_workers().build() {
        Ok(pool) => CHECKS
            .iter()
            .for_each(|(name, check)| report(name, check(&pool))),
        Err(e) => report("world", Err(e.to_string())),
    }
    // The last pool ends the worker ranks as it drops.
    let last = MpiPool::builder().threads_per_rank(2).build();
    report(
        "threads_per_rank",
        match &last {
            Ok(pool) => check(pool.ranks().iter().all(|r| r.threads == 2), || {
                format!("{:?}", pool.ranks())
            }),
            Err(e) => Err(e.to_string()),
        },
    );
    drop(last);
    report(
        "workers_exit_with_the_pool",
        match MpiPool::world() {
            Err(Error::Mpi(message)) if message.contains("exited") => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    failed == 0
}

/// Without workers, `world()` fails at once with a clear error.
fn alone() -> bool {
    let began = Instant::now();
    let outcome = MpiPool::world();
    let ok = matches!(&outcome, Err(Error::Mpi(m)) if m.contains("mpirun") || m.contains("single rank"))
        && began.elapsed() < Duration::from_secs(30);
    println!(
        "check single_rank_start_gives_an_error ... {} ({outcome:?})",
        if ok { "ok" } else { "FAILED" }
    );
    ok
}

/// Scenarios that end the job: each must end, non-zero, with no rank left behind.
fn ending(mode: &str) -> ! {
    let pool = MpiPool::world().expect("a pool");
    match mode {
        "crash" => {
            let _ = pool.submit(abort, ()).result();
            unreachable!("MPI ends the job when a rank aborts");
        }
        "exit-early" => {
            let _running: Vec<_> = (0..8).map(|_| pool.submit(sleep_ms, 60_000)).collect();
            std::thread::sleep(Duration::from_millis(300));
            std::process::exit(3)
        }
        "panic-early" => {
            let _running: Vec<_> = (0..4).map(|_| pool.submit(sleep_ms, 500)).collect();
            panic!("rank 0 fails with tasks in flight");
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn main() {
    parexec::init();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let ok = match mode.as_str() {
        "--list" => {
            println!("single_rank_start_gives_an_error: test");
            true
        }
        "suite" => suite(),
        "mismatch" => match MpiPool::world() {
            Err(Error::Handshake(m))
                if m.contains("rank 1 on host") && m.contains("different build") =>
            {
                println!("check identity_mismatch_names_rank_and_host ... ok ({m})");
                true
            }
            other => {
                println!("check identity_mismatch_names_rank_and_host ... FAILED: {other:?}");
                false
            }
        },
        "crash" | "exit-early" | "panic-early" => ending(&mode),
        _ => alone(),
    };
    if !ok {
        std::process::exit(1);
    }
}
