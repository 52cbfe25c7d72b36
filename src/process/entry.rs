//! Where a re-executed copy of the program turns into a worker: a constructor that runs before
//! `main`, with [`init`](crate::init) as the fallback for platforms without one.
//!
//! # Design
//!
//! A pool starts its workers by executing the program again with [`ENV`] set. The constructor
//! below runs in every process that links this crate, before `main` (and so before a test
//! harness, a criterion `main` or an async runtime starts); it looks the variable up once and,
//! when it names this process's parent, serves as a worker and exits. The user's `main` never
//! runs in a worker, so its side effects happen once, in the parent. In any other process the
//! constructor costs one environment lookup.
//!
//! It runs at the `late` constructor priority, after the constructors of other crates and of
//! the program itself, so statics they initialise are ready for tasks. What Rust's runtime
//! would set up before `main` and a worker relies on is done by the worker itself (see
//! `worker::serve`: `SIGPIPE` ignored, the panic hook).
//!
//! The linker keeps a constructor only if its object file is linked, so the flag it sets is
//! read by [`workers_can_serve`], on the path every pool takes before starting a worker: a
//! program that starts workers always links it. If the constructor still did not run (a
//! platform without constructors), workers reach `main`, and only [`crate::init`] there makes
//! them serve; a parent that called neither fails at once with an error that names the fix,
//! instead of starting copies of a program that would not serve.

use std::sync::atomic::{AtomicBool, Ordering};

use super::launch::ENV;
use super::worker;
use crate::Error;

/// Set by the constructor: this executable's workers serve before `main`.
static CONSTRUCTED: AtomicBool = AtomicBool::new(false);
/// Set by [`init`](crate::init): this program's `main` hands a worker over to serving.
static INIT_CALLED: AtomicBool = AtomicBool::new(false);

// SAFETY: before `main`, this reads one environment variable and stores a flag, which need
// nothing that Rust's runtime sets up in `main`. A worker then serves without returning: it
// sets up what it needs itself (`worker::serve`), catches every task's panic, and ends the
// process with `_exit`, so `main` and the runtime's start-up never run after it.
#[ctor::ctor(unsafe, priority = late)]
fn serve_before_main() {
    CONSTRUCTED.store(true, Ordering::Relaxed);
    if std::env::var_os(ENV).is_some() {
        worker::init();
    }
}

/// `parexec::init`: serves if this process is a worker the constructor did not serve.
pub(crate) fn init() {
    INIT_CALLED.store(true, Ordering::Relaxed);
    worker::init();
}

/// Whether workers started from this executable will serve, before any is started.
///
/// # Errors
///
/// [`Error::Handshake`] naming `parexec::init()` when neither the constructor ran nor `main`
/// called `init`.
pub(crate) fn workers_can_serve() -> Result<(), Error> {
    check(
        CONSTRUCTED.load(Ordering::Relaxed),
        INIT_CALLED.load(Ordering::Relaxed),
    )
}

fn check(constructed: bool, init_called: bool) -> Result<(), Error> {
    if constructed || init_called {
        Ok(())
    } else {
        Err(Error::Handshake(
            "worker processes of this executable would run main without serving: constructors \
             do not run on this platform, so call parexec::init() first thing in main"
                .into(),
        ))
    }
}

/// A hint for a worker that did not say hello: only where `main` has to call `init`.
pub(crate) fn hint() -> &'static str {
    if CONSTRUCTED.load(Ordering::Relaxed) {
        ""
    } else {
        "; does main call parexec::init() first?"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_constructor_ran_before_this_test() {
        assert!(CONSTRUCTED.load(Ordering::Relaxed));
        assert!(workers_can_serve().is_ok());
        assert_eq!(hint(), "");
    }

    #[test]
    fn without_constructor_or_init_no_worker_is_started() {
        assert!(check(true, false).is_ok());
        assert!(check(false, true).is_ok());
        let err = check(false, false).unwrap_err();
        assert!(
            matches!(&err, Error::Handshake(m) if m.contains("parexec::init()")),
            "{err:?}"
        );
    }
}
