//! Deliberate panics: thousands of them in a soak or leak run would bury a real failure on
//! stderr, so their messages start with [`PREFIX`] and a panic hook drops them.

use std::sync::Once;

/// Starts the message of every deliberate panic.
pub const PREFIX: &str = "deliberate panic";

/// Panics with a message that [`silence`] recognises.
pub fn panic_with(x: u64) -> ! {
    panic!("{PREFIX} {x}")
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
