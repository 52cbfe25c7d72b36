//! Panic capture, in one place: running code under `catch_unwind`, turning the payload into a
//! message, and recording where the panic happened.
//!
//! A caught payload carries only the message; the location is known only to the panic hook.
//! [`install_hook`] installs, once per process, a hook that records the location in a
//! thread-local and then calls whatever hook was installed before it, so users keep their own
//! hooks and messages. Every executor calls it when it starts.

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use crate::Error;

thread_local! {
    static LAST_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A caught panic: its message and, if the hook saw it, its `file:line:column`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panic {
    pub(crate) message: String,
    pub(crate) location: Option<String>,
}

impl Panic {
    /// The panic of `payload`, with the location the hook recorded on this thread.
    fn from_payload(payload: Box<dyn Any + Send>) -> Self {
        let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "panic with a non-string payload".to_owned()
        };
        Panic {
            message,
            location: take_location(),
        }
    }
}

impl From<Panic> for Error {
    fn from(panic: Panic) -> Self {
        Error::Panicked {
            message: panic.message,
            location: panic.location,
        }
    }
}

/// Runs `f`, catching a panic. Code given to this must leave nothing it shares half-updated
/// when it panics (every caller hands over a task, a serde call or a callback, whose state the
/// caller discards or resolves as failed).
#[inline]
pub(crate) fn catch<T>(f: impl FnOnce() -> T) -> Result<T, Panic> {
    catch_unwind(AssertUnwindSafe(f)).map_err(Panic::from_payload)
}

/// Installs the location-recording hook; effective once per process.
pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Unit tests panic on purpose; below this hook, their filter keeps the locations.
        #[cfg(test)]
        crate::deliberate::silence();
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
fn take_location() -> Option<String> {
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
        let panic = catch(|| crate::deliberate::panic_with("recorded")).unwrap_err();
        let location = panic.location.expect("the hook records a location");
        assert!(location.starts_with(file!()), "{location}");
        assert_eq!(take_location(), None, "taking clears the slot");
    }

    #[test]
    fn panic_payloads_become_messages() {
        let from_str = Error::from(Panic::from_payload(Box::new("static message")));
        let from_string = Error::from(Panic::from_payload(Box::new(String::from("owned message"))));
        let from_other = Error::from(Panic::from_payload(Box::new(42_u8)));
        assert!(
            matches!(from_str, Error::Panicked { ref message, .. } if message == "static message")
        );
        assert!(
            matches!(from_string, Error::Panicked { ref message, .. } if message == "owned message")
        );
        assert!(
            matches!(from_other, Error::Panicked { ref message, .. } if message.contains("non-string"))
        );
    }
}
