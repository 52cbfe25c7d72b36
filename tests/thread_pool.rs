//! `ThreadPool` submission, scopes, lifecycle, builder and statistics.

#[path = "support/deliberate.rs"]
mod deliberate;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::Duration;

use parexec::{Error, Executor, ExecutorKind, ThreadPool};

#[test]
fn submit_accepts_any_send_fnonce() {
    let pool = ThreadPool::new(2).unwrap();
    let owned = vec![1, 2, 3];
    let moved_in = pool.submit(move || owned.into_iter().sum::<i32>());
    let unit = pool.submit(|| ());
    assert_eq!(moved_in.result().unwrap(), 6);
    unit.result().unwrap();
}

#[test]
fn tasks_run_in_parallel_on_all_workers() {
    let pool = ThreadPool::new(2).unwrap();
    let barrier = Arc::new(Barrier::new(2));
    // Both tasks must be running at once for either barrier wait to return.
    let futures: Vec<_> = (0..2)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            pool.submit(move || barrier.wait().is_leader())
        })
        .collect();
    let leaders = futures.into_iter().map(|f| f.result().unwrap());
    assert_eq!(leaders.filter(|&l| l).count(), 1);
}

#[test]
fn scoped_tasks_borrow_without_arc_or_clone() {
    let pool = ThreadPool::new(2).unwrap();
    let data: Vec<u64> = (1..=100).collect();
    let mut halves = [0_u64; 2];
    pool.scope(|s| {
        let (left, right) = halves.split_at_mut(1);
        let (a, b) = data.split_at(50);
        s.submit(move || left[0] = a.iter().sum());
        s.submit(move || right[0] = b.iter().sum());
    });
    assert_eq!(halves, [1275, 3775]);
}

#[test]
fn scope_waits_for_tasks_whose_futures_were_dropped() {
    let pool = ThreadPool::new(1).unwrap();
    let finished = AtomicUsize::new(0);
    pool.scope(|s| {
        for _ in 0..10 {
            s.submit(|| {
                std::thread::sleep(Duration::from_millis(1));
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    assert_eq!(finished.load(Ordering::SeqCst), 10);
}

#[test]
fn a_panicking_scoped_task_fails_its_future_only() {
    deliberate::silence();
    let pool = ThreadPool::new(1).unwrap();
    let outcomes = pool.scope(|s| {
        let bad = s.submit(|| -> i32 { deliberate::panic_with("scoped") });
        let good = s.submit(|| 3);
        (bad.result(), good.result())
    });
    assert!(matches!(outcomes.0, Err(Error::Panicked { .. })));
    assert_eq!(outcomes.1.unwrap(), 3);
}

#[test]
fn a_panic_in_the_scope_body_is_reraised_after_tasks_finish() {
    deliberate::silence();
    let pool = ThreadPool::new(1).unwrap();
    let finished = AtomicUsize::new(0);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.scope(|s| {
            s.submit(|| {
                std::thread::sleep(Duration::from_millis(5));
                finished.fetch_add(1, Ordering::SeqCst);
            });
            deliberate::panic_with("body");
        })
    }));
    assert!(outcome.is_err());
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

#[test]
fn nested_waiting_on_a_one_worker_pool_does_not_deadlock() {
    let pool = Arc::new(ThreadPool::new(1).unwrap());
    let inner_pool = Arc::clone(&pool);
    // The only worker waits for a task queued behind it: it must run that task itself.
    let outer = pool.submit(move || inner_pool.submit(|| 21).result().unwrap() * 2);
    assert_eq!(outer.result().unwrap(), 42);
    let scoped_pool = Arc::clone(&pool);
    let via_scope = pool.submit(move || scoped_pool.scope(|s| s.submit(|| 5).result().unwrap()));
    assert_eq!(via_scope.result().unwrap(), 5);
}

#[test]
fn shutdown_runs_queued_work_then_refuses_more() {
    let pool = ThreadPool::new(1).unwrap();
    let futures: Vec<_> = (0..50)
        .map(|i| {
            pool.submit(move || {
                std::thread::sleep(Duration::from_micros(100));
                i
            })
        })
        .collect();
    pool.shutdown();
    for (i, future) in futures.into_iter().enumerate() {
        assert_eq!(future.result().unwrap(), i);
    }
    assert!(matches!(pool.submit(|| 0).result(), Err(Error::Shutdown)));
    pool.shutdown();
}

#[test]
fn a_scope_on_a_shut_down_pool_refuses_tasks_without_waiting() {
    let pool = ThreadPool::new(1).unwrap();
    pool.shutdown();
    let refused = pool.scope(|s| s.submit(|| 1).result());
    assert!(matches!(refused, Err(Error::Shutdown)));
}

#[test]
fn shutdown_cancel_cancels_what_has_not_started() {
    let pool = ThreadPool::new(1).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (open, wait) = mpsc::channel::<()>();
    let running = pool.submit(move || {
        started_tx.send(()).unwrap();
        wait.recv().unwrap();
        "finished"
    });
    let captured = Arc::new(());
    let queued: Vec<_> = (0..5)
        .map(|i| {
            let captured = Arc::clone(&captured);
            pool.submit(move || (i, captured))
        })
        .collect();
    started.recv().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| pool.shutdown_cancel());
        while !queued.iter().all(|f| f.is_done()) {
            std::thread::yield_now();
        }
        open.send(()).unwrap();
    });
    assert_eq!(running.result().unwrap(), "finished");
    assert_eq!(
        Arc::strong_count(&captured),
        1,
        "cancelled tasks release their captures even while their futures live"
    );
    for future in queued {
        assert!(matches!(future.result(), Err(Error::Cancelled)));
    }
    assert_eq!(pool.stats().cancelled, 5);
}

thread_local! {
    static EXIT_SIGNAL: RefCell<Option<ExitSignal>> = const { RefCell::new(None) };
}

/// Sends a message when the thread that owns it exits (thread-local destructors run then).
struct ExitSignal(mpsc::Sender<usize>, usize);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

#[test]
fn dropping_the_pool_joins_every_worker_and_initializer_runs_once_each() {
    let (exited_tx, exited) = mpsc::channel();
    let exited_tx = std::sync::Mutex::new(exited_tx);
    let init_calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&init_calls);
    let pool = ThreadPool::builder()
        .workers(3)
        .initializer(move |index| {
            counted.fetch_add(1, Ordering::SeqCst);
            let signal = ExitSignal(exited_tx.lock().unwrap().clone(), index);
            EXIT_SIGNAL.with(|slot| *slot.borrow_mut() = Some(signal));
        })
        .build()
        .unwrap();
    assert_eq!(
        init_calls.load(Ordering::SeqCst),
        3,
        "build waits for every initializer"
    );
    pool.submit(|| ()).result().unwrap();
    drop(pool);
    let mut gone: Vec<usize> = exited.try_iter().collect();
    gone.sort_unstable();
    assert_eq!(gone, [0, 1, 2], "every worker has exited when drop returns");
}

#[test]
fn a_panicking_initializer_fails_the_build() {
    deliberate::silence();
    let err = ThreadPool::builder()
        .workers(2)
        .initializer(|index| {
            if index != 0 {
                deliberate::panic_with(format_args!("worker {index} refuses"));
            }
        })
        .build()
        .unwrap_err();
    match err {
        Error::Initializer(message) => assert!(message.contains("worker 1 refuses"), "{message}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn builder_sets_names_and_stack_size_and_defaults_to_available_cores() {
    let pool = ThreadPool::builder()
        .workers(1)
        .thread_name("resize")
        .stack_size(8 << 20)
        .build()
        .unwrap();
    let name = pool
        .submit(|| std::thread::current().name().map(str::to_owned))
        .result()
        .unwrap();
    assert_eq!(name.as_deref(), Some("resize-0"));
    // A frame larger than the default 2 MiB stack works with the 8 MiB one.
    let deep = pool.submit(|| {
        let big = [1_u8; 4 << 20];
        std::hint::black_box(&big)
            .iter()
            .map(|&b| u64::from(b))
            .sum::<u64>()
    });
    assert_eq!(deep.result().unwrap(), 4 << 20);
    let default = ThreadPool::builder().build().unwrap();
    assert_eq!(default.workers(), parexec::Cores::detect().workers());
}

#[test]
fn zero_workers_is_an_error() {
    assert!(matches!(ThreadPool::new(0), Err(Error::InvalidArgument(_))));
}

#[test]
fn stats_count_outcomes_and_time() {
    deliberate::silence();
    let pool = ThreadPool::new(2).unwrap();
    let ok: Vec<_> = (0..10)
        .map(|_| pool.submit(|| std::thread::sleep(Duration::from_millis(1))))
        .collect();
    let bad = pool.submit(|| deliberate::panic_with("counted as failed"));
    for f in ok {
        f.result().unwrap();
    }
    assert!(bad.result().is_err());
    pool.shutdown();
    let stats = pool.stats();
    assert_eq!(stats.submitted, 11);
    assert_eq!(stats.completed, 10);
    assert_eq!(stats.failed, 1);
    assert_eq!(stats.cancelled, 0);
    assert!(stats.busy >= Duration::from_millis(10), "{stats:?}");
}

#[test]
fn stats_estimate_queue_wait_from_sampled_tasks() {
    let pool = ThreadPool::new(1).unwrap();
    // One worker: the 64 tasks queued behind a 20 ms blocker each wait at least 20 ms.
    let blocker = pool.submit(|| std::thread::sleep(Duration::from_millis(20)));
    let queued: Vec<_> = (0..64).map(|i| pool.submit(move || i)).collect();
    blocker.result().unwrap();
    for f in queued {
        f.result().unwrap();
    }
    pool.shutdown();
    let stats = pool.stats();
    // Tasks 0 and 64 are sampled (one in 64); the second waited >= 20 ms, scaled to 65 tasks.
    assert!(
        stats.queue_wait >= Duration::from_millis(20) * 65 / 2,
        "{stats:?}"
    );
}

#[test]
fn the_executor_trait_runs_plain_functions() {
    fn add((a, b): (u64, u64)) -> u64 {
        a + b
    }
    fn pipeline<E: Executor>(executor: &E) -> u64 {
        let single = executor.submit(add, (1, 2)).result().unwrap();
        let mapped: u64 = executor
            .map(add, (0..10).map(|i| (i, i)))
            .sum::<Result<u64, _>>()
            .unwrap();
        single + mapped
    }
    let pool = ThreadPool::new(2).unwrap();
    assert_eq!(pipeline(&pool), 3 + 90);
    assert_eq!(pool.kind(), ExecutorKind::Threads);
    assert_eq!(Executor::workers(&pool), 2);
}
