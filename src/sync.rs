//! The synchronization primitives of the parts of the crate that are model-checked: the future
//! state machine, the thread pool's park/wake protocol, and (through the future) the in-place
//! output's hand-off.
//!
//! A normal build re-exports `parking_lot` and `std` types, so this module costs nothing. The
//! crate's unit tests built with `--cfg loom` swap in thin wrappers over `loom`'s types (a
//! dev-dependency) with the same API, so the loom models (the `loom` modules beside the code
//! they check) run the crate's real code under the model checker; see `.ci/loom`.

#[cfg(not(all(loom, test)))]
pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};
#[cfg(not(all(loom, test)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, fence};

/// Tells the calling thread apart from every other live thread.
#[cfg(not(all(loom, test)))]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ThreadId(usize);

/// The calling thread's [`ThreadId`]: the address of a thread-local, unique among live
/// threads, and cheaper than `std::thread::current()`, which counts a reference.
#[cfg(not(all(loom, test)))]
pub(crate) fn current_thread_id() -> ThreadId {
    thread_local! {
        static ANCHOR: u8 = const { 0 };
    }
    ThreadId(ANCHOR.with(|anchor| std::ptr::from_ref(anchor).addr()))
}

#[cfg(all(loom, test))]
pub(crate) use self::model::{Condvar, Mutex, MutexGuard, current_thread_id};
#[cfg(all(loom, test))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, fence};
#[cfg(all(loom, test))]
pub(crate) use loom::thread::ThreadId;

/// `parking_lot`'s API over `loom`'s primitives.
#[cfg(all(loom, test))]
mod model {
    use std::ops::{Deref, DerefMut};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    pub(crate) fn current_thread_id() -> loom::thread::ThreadId {
        loom::thread::current().id()
    }

    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            // A model never poisons a lock: a panic fails the whole model.
            MutexGuard(Some(self.0.lock().expect("not poisoned")))
        }
    }

    /// `None` only while a condition variable waits with the guard.
    pub(crate) struct MutexGuard<'a, T>(Option<loom::sync::MutexGuard<'a, T>>);

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.0.as_ref().expect("held")
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.0.as_mut().expect("held")
        }
    }

    /// A condition variable whose `notify_*` report how many waiters they woke, as
    /// `parking_lot`'s do. The count is exact when notifying under the mutex the waiters wait
    /// with, which is how the sleep protocol (the one user of the count) notifies. loom's
    /// condition variable, like `parking_lot`'s, has no spurious wake-ups.
    pub(crate) struct Condvar {
        inner: loom::sync::Condvar,
        /// Waiters not yet notified. Changed only under the waiters' mutex, so a plain
        /// counter that loom does not interleave is enough.
        waiting: AtomicUsize,
    }

    pub(crate) struct WaitTimeoutResult;

    impl WaitTimeoutResult {
        pub(crate) fn timed_out(&self) -> bool {
            false
        }
    }

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar {
                inner: loom::sync::Condvar::new(),
                waiting: AtomicUsize::new(0),
            }
        }

        pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            let held = guard.0.take().expect("held");
            guard.0 = Some(self.inner.wait(held).expect("not poisoned"));
        }

        /// loom has no clock: a timed wait is an untimed one, so models must not rely on
        /// timing out.
        pub(crate) fn wait_until<T>(
            &self,
            guard: &mut MutexGuard<'_, T>,
            _deadline: Instant,
        ) -> WaitTimeoutResult {
            self.wait(guard);
            WaitTimeoutResult
        }

        pub(crate) fn notify_one(&self) -> bool {
            let woken = self
                .waiting
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok();
            self.inner.notify_one();
            woken
        }

        pub(crate) fn notify_all(&self) -> usize {
            let woken = self.waiting.swap(0, Ordering::Relaxed);
            self.inner.notify_all();
            woken
        }
    }
}
