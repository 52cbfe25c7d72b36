//! Blocking on a future: poll briefly, help the executor the thread works for, then block.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Future;

/// The longest a waiter polls before it blocks: a blocked thread takes ~80 µs to wake on small
/// VMs, longer than many tasks.
const SPIN_BEFORE_BLOCKING: Duration = Duration::from_micros(100);

/// What a thread does while a future it waits for is pending: run queued work of the executor
/// it belongs to until `done()` holds, the deadline passes, or there is nothing left to run.
pub(crate) type Helper = dyn Fn(&dyn Fn() -> bool, Option<Instant>);

thread_local! {
    /// How long this thread polls a pending future before it blocks. It doubles after a wait
    /// that a full poll would have covered and halves after one that it would not, so a thread
    /// waiting on long tasks stops taking turns on the cores those tasks run on.
    pub(super) static POLL_BUDGET: Cell<Duration> = const { Cell::new(SPIN_BEFORE_BLOCKING) };

    /// Set by an executor on the threads it owns, so a task waiting for a task it submitted
    /// runs queued work instead of starving a small pool.
    static HELPER: RefCell<Option<Rc<Helper>>> = const { RefCell::new(None) };
}

/// Registers `helper` for the calling thread until the returned guard is dropped.
pub(crate) fn register_helper(helper: Rc<Helper>) -> HelperGuard {
    HELPER.with(|slot| *slot.borrow_mut() = Some(helper));
    HelperGuard(())
}

/// Unregisters the calling thread's helper when dropped; see [`register_helper`].
pub(crate) struct HelperGuard(());

impl Drop for HelperGuard {
    fn drop(&mut self) {
        // `try_with`: the guard may be dropped during thread teardown.
        let _ = HELPER.try_with(|slot| slot.borrow_mut().take());
    }
}

/// Runs the calling thread's helper, if an executor registered one, until `done()` holds, the
/// deadline passes, or it has nothing left to run.
pub(crate) fn help_until(done: &dyn Fn() -> bool, deadline: Option<Instant>) {
    // Cloned out, so a helped task that waits in turn finds the slot free.
    if let Some(helper) = HELPER.with(|slot| slot.borrow().clone()) {
        helper(done, deadline);
    }
}

impl<T> Future<T> {
    /// Blocks until done or until `deadline`; returns whether the future is done.
    ///
    /// On a thread whose executor registered a helper, it runs that executor's queued tasks
    /// while it waits, so a task that waits for a task it submitted cannot deadlock the pool.
    pub(super) fn wait_until(&self, deadline: Option<Instant>) -> bool {
        if self.shared().finished.load(Ordering::Acquire) {
            return true;
        }
        // Helping and polling are clock-driven shortcuts that the model checker cannot
        // explore; whether they run or not, the wait ends in `block_until`.
        if cfg!(all(loom, test)) {
            return self.block_until(deadline);
        }
        help_until(&|| self.is_done(), deadline);
        // Poll briefly before blocking, yielding so the workers keep the cores.
        let budget = POLL_BUDGET.get();
        let waiting_since = Instant::now();
        let poll_until = waiting_since + budget;
        while !self.shared().finished.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= poll_until || deadline.is_some_and(|d| now >= d) {
                break;
            }
            std::thread::yield_now();
        }
        let done = self.block_until(deadline);
        // Waking from a block adds up to another poll's worth of latency: a wait this short
        // would have been caught by polling.
        let short = waiting_since.elapsed() <= 2 * SPIN_BEFORE_BLOCKING;
        POLL_BUDGET.set(if short {
            (budget * 2).clamp(Duration::from_micros(1), SPIN_BEFORE_BLOCKING)
        } else {
            budget / 2
        });
        done
    }

    /// Blocks on the condition variable until done or until `deadline`.
    fn block_until(&self, deadline: Option<Instant>) -> bool {
        let shared = self.shared();
        let mut inner = shared.inner.lock();
        while !inner.can_take() {
            match deadline {
                None => shared.done.wait(&mut inner),
                Some(deadline) => {
                    if shared.done.wait_until(&mut inner, deadline).timed_out() {
                        return inner.can_take();
                    }
                }
            }
        }
        true
    }
}
