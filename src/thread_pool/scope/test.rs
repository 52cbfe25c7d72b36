use super::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// A capture that, when dropped, reports whether the scope still counted its task (so
/// `ThreadPool::scope` could not have returned) and whether the data it borrows from the
/// caller's stack was still alive.
struct DropProbe<'a> {
    borrowed_alive: &'a AtomicBool,
    scope: Arc<ScopeState>,
    verdict: mpsc::Sender<(bool, bool)>,
}

impl Drop for DropProbe<'_> {
    fn drop(&mut self) {
        let still_counted = *self.scope.running.lock() > 0;
        let alive = self.borrowed_alive.load(Ordering::SeqCst);
        self.verdict.send((still_counted, alive)).unwrap();
    }
}

#[test]
fn a_cancelled_scoped_task_drops_its_captures_before_the_scope_returns() {
    let liveness = Duration::from_secs(60);
    let pool = ThreadPool::new(1).unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel();
    let busy = pool.submit(move || {
        started_tx.send(()).unwrap();
        let _ = gate.recv();
    });
    started.recv_timeout(liveness).unwrap();
    let borrowed_alive = AtomicBool::new(true);
    let (verdict_tx, verdict) = mpsc::channel();
    let cancelled = std::thread::scope(|threads| {
        let cancelled = pool.scope(|s| {
            let probe = DropProbe {
                borrowed_alive: &borrowed_alive,
                scope: Arc::clone(&s.state),
                verdict: verdict_tx,
            };
            let queued = s.submit(move || drop(probe));
            // Queued behind the busy worker, the task is dropped unrun by the drain.
            threads.spawn(|| pool.shutdown_cancel());
            queued
        });
        // The scope has returned: what its tasks borrowed may go now.
        borrowed_alive.store(false, Ordering::SeqCst);
        release.send(()).unwrap();
        cancelled
    });
    assert_eq!(
        verdict.recv_timeout(liveness).unwrap(),
        (true, true),
        "the captures were dropped after the scope could return"
    );
    assert!(matches!(cancelled.result(), Err(Error::Cancelled)));
    busy.result().unwrap();
}
