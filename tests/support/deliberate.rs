//! Deliberate panics: thousands of them in a soak or leak run, or a few full reports with
//! backtraces in `cargo test`, would bury a real failure on stderr, so their messages start
//! with [`PREFIX`] and a panic hook drops them.
//!
//! parexec records where a task panicked with a panic hook of its own, installed when the first
//! pool starts, on top of the hook in place then. Calling [`silence`] before that keeps the
//! location: the filter then sits below parexec's hook. Called later, the filter sits above
//! and deliberate panics lose their location; no other result changes.

use std::sync::Once;

/// Starts the message of every deliberate panic.
pub const PREFIX: &str = "deliberate panic";

/// Panics with the message `"{PREFIX} {what}"`, which [`silence`] recognises. The panic's
/// location is the caller's.
#[track_caller]
pub fn panic_with(what: impl std::fmt::Display) -> ! {
    panic!("{PREFIX} {what}")
}

/// Installs (once per process) a panic hook that drops deliberate panics and passes any other
/// to the hook in place before. Call it in the parent before creating pools, and give it to
/// process pools as their initializer so that workers run it too.
pub fn silence() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied());
            let deliberate = message.is_some_and(|message| message.starts_with(PREFIX));
            if !deliberate {
                previous(info);
            }
        }));
    });
}
