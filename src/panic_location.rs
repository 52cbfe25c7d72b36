//! Captures where a task panicked.
//!
//! A caught panic payload carries only the message; the location is known only to the panic
//! hook. The crate installs, once, a hook that records the location in a thread-local and then
//! calls whatever hook was installed before it, so users keep their own hooks and messages.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static LAST_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the recording hook; called by every pool constructor, effective once per process.
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            // `try_with`: a panic during thread teardown must not panic again here.
            let _ = LAST_LOCATION.try_with(|slot| *slot.borrow_mut() = location);
            previous(info);
        }));
    });
}

/// The location of the most recent panic on this thread, if the hook saw one.
pub(crate) fn take() -> Option<String> {
    LAST_LOCATION
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_the_location_of_a_caught_panic() {
        install_hook();
        let _ = std::panic::catch_unwind(|| panic!("recorded"));
        let location = take().expect("the hook records a location");
        assert!(location.starts_with(file!()), "{location}");
        assert_eq!(take(), None, "taking clears the slot");
    }
}
