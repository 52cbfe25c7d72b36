//! One test per fault the pool must survive: each fails only the task it hits, and the pool
//! replaces the worker.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parexec::{Error, ProcessPool, WorkerExit};

use crate::census;
use crate::deliberate;
use crate::tasks::*;
use crate::{eventually, pool};

/// Submits 20 good tasks around a faulty one and checks that exactly the faulty one failed.
pub fn only_the_faulty_task_fails(fault: fn(()) -> u64) -> Error {
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

/// A fault among a burst of short tasks, which a worker finishes faster than the parent sends
/// them: still only the faulty task fails, and every other one runs exactly once. A worker
/// that held back the replies of finished tasks to send them together would lose them when it
/// dies, failing a healthy task in the faulty one's place and running the others again.
pub fn a_fault_in_a_burst_of_short_tasks_fails_only_itself() {
    let pool = pool(1);
    for round in 0..5 {
        let before: Vec<_> = (0..200).map(|x| pool.submit(square, x)).collect();
        let faulty = pool.submit(abort, ());
        let after: Vec<_> = (200..400).map(|x| pool.submit(square, x)).collect();
        for (x, future) in (0..400).zip(before.into_iter().chain(after)) {
            assert_eq!(
                future
                    .result()
                    .unwrap_or_else(|e| panic!("healthy task {x} of round {round}: {e:?}")),
                x * x,
                "round {round}"
            );
        }
        assert_died(
            faulty.result().expect_err("the faulty task fails"),
            WorkerExit::Signal(libc::SIGABRT),
        );
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.completed, stats.failed),
        (2_000, 5),
        "each task ran, and was counted, once"
    );
}

pub fn assert_died(error: Error, expected: WorkerExit) {
    match error {
        Error::WorkerDied { pid, exit } => {
            assert!(pid > 0);
            assert_eq!(exit, expected);
        }
        other => panic!("expected WorkerDied, got {other:?}"),
    }
}

pub fn a_panic_fails_only_its_task_and_the_worker_survives() {
    let pool = pool(1);
    let pid_before = pool.worker_pids();
    let results: Vec<_> = (10..16).map(|x| pool.submit(panics_on_13, x)).collect();
    for (x, future) in (10..16).zip(results) {
        match future.result() {
            Ok(v) => assert_eq!(v, x),
            Err(Error::Panicked { message, location }) => {
                assert_eq!(x, 13);
                assert_eq!(
                    message,
                    format!("{} thirteen is unlucky", deliberate::PREFIX)
                );
                assert!(location.unwrap().contains("process_pool/tasks.rs"));
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

pub fn abort_fails_only_its_task() {
    assert_died(
        only_the_faulty_task_fails(abort),
        WorkerExit::Signal(libc::SIGABRT),
    );
}

pub fn segfault_fails_only_its_task() {
    assert_died(
        only_the_faulty_task_fails(segfault),
        WorkerExit::Signal(libc::SIGSEGV),
    );
}

pub fn exit_code_fails_only_its_task() {
    assert_died(only_the_faulty_task_fails(exit_3), WorkerExit::Code(3));
}

pub fn sigkill_from_outside_fails_only_the_running_task() {
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

pub fn a_runaway_task_times_out_and_the_worker_is_replaced() {
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
    // The replacement counts once its handshake is done, which may be after the results.
    assert!(eventually(|| pool.stats().worker_restarts >= 1));
}

pub fn an_unserializable_argument_fails_at_once() {
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

pub fn an_unserializable_result_fails_only_its_task() {
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

pub fn a_malformed_frame_replaces_the_worker() {
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

pub fn an_oversized_argument_is_rejected_at_once() {
    let pool = ProcessPool::builder()
        .workers(1)
        .max_frame_size(1024)
        .build()
        .unwrap();
    let big = pool.submit(checksum, "x".repeat(4096));
    assert!(matches!(big.result(), Err(Error::InvalidArgument(_))));
    assert_eq!(pool.submit(square, 5).result().unwrap(), 25);
}

pub fn retry_policy_reruns_a_task_whose_worker_died() {
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

/// Set in a child copy of this binary that plays a parent crashing with busy workers.
pub const CRASHING_PARENT: &str = "PAREXEC_TEST_CRASHING_PARENT";

pub fn crash_with_busy_workers() -> ! {
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

/// Needs `/proc`, to tell whether the workers still live.
pub fn workers_exit_when_the_parent_crashes() {
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
    let give_up = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|&pid| census::is_alive(pid) != Some(false)) {
        assert!(
            Instant::now() < give_up,
            "workers outlived their parent: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the test waits for before its submitters may stop.
const MIN_KILLS: usize = 3;

pub fn concurrent_submitters_survive_repeated_kills() {
    let pool = ProcessPool::builder()
        .workers(2)
        .retry_worker_deaths(u32::MAX)
        .build()
        .unwrap();
    let kills = AtomicUsize::new(0);
    let mut victims = HashSet::new();
    std::thread::scope(|scope| {
        let submitters: Vec<_> = (0..4_u64)
            .map(|t| {
                let (pool, kills) = (&pool, &kills);
                scope.spawn(move || {
                    // Work goes on until the killer has struck a few times, so that every
                    // kill lands on a pool with tasks in flight.
                    let mut round = 0;
                    while round == 0 || kills.load(Ordering::Relaxed) < MIN_KILLS {
                        let base = t * 1_000_000 + round * 1000;
                        let futures: Vec<_> =
                            (0..300).map(|i| pool.submit(short_nap, base + i)).collect();
                        for (i, future) in (0..300).zip(futures) {
                            assert_eq!(future.result().unwrap(), base + i + 1);
                        }
                        let mapped: Vec<u64> = pool
                            .map(short_nap, 0..200)
                            .chunksize(5)
                            .collect::<Result<_, _>>()
                            .unwrap();
                        assert_eq!(mapped, (1..201).collect::<Vec<_>>());
                        round += 1;
                    }
                })
            })
            .collect();
        while !submitters.iter().all(|s| s.is_finished()) {
            // A killed worker stays listed until its supervisor notices; kill each pid once.
            let victim = pool
                .worker_pids()
                .into_iter()
                .find(|p| !victims.contains(p));
            if let Some(victim) = victim {
                // SAFETY: sending a signal to a process has no memory effects in this one.
                if unsafe { libc::kill(victim as libc::pid_t, libc::SIGKILL) } == 0 {
                    victims.insert(victim);
                    kills.fetch_add(1, Ordering::Relaxed);
                }
            }
            std::thread::sleep(Duration::from_millis(15));
        }
        for submitter in submitters {
            submitter.join().unwrap();
        }
    });
    // Every victim's slot starts a replacement; once each slot has a live worker again, the
    // restarts are exactly the kills. Bounded only so that a regression fails, not hangs.
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let pids = pool.worker_pids();
        if pids.len() == 2 && !pids.iter().any(|p| victims.contains(p)) {
            break;
        }
        assert!(
            Instant::now() < give_up,
            "killed workers were not replaced: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = pool.stats();
    assert_eq!(stats.completed, stats.submitted, "{stats:?}");
    assert!(victims.len() >= MIN_KILLS, "{victims:?}");
    assert_eq!(stats.worker_restarts, victims.len() as u64, "{stats:?}");
}
