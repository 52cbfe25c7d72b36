//! Liveness bounds for tests: a hang fails with a message instead of stalling the suite. They
//! are not speed targets; each returns as soon as its condition holds.

use std::time::{Duration, Instant};

/// How long a test waits for something that should happen at once before it calls it a hang.
pub const LIVENESS: Duration = Duration::from_secs(60);

/// Polls `condition` until it holds, failing after [`LIVENESS`].
///
/// # Panics
///
/// If `condition` still fails after [`LIVENESS`], naming `what` never happened.
pub fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + LIVENESS;
    while !condition() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::yield_now();
    }
}
