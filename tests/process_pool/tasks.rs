//! Task functions and payload types. Tasks are plain `fn`s, so they travel as code offsets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deliberate;

pub fn square(x: u64) -> u64 {
    x * x
}

pub fn slow_square(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(20));
    x * x
}

pub fn panics_on_13(x: u64) -> u64 {
    if x == 13 {
        deliberate::panic_with("thirteen is unlucky");
    }
    x
}

pub fn abort(_: ()) -> u64 {
    std::process::abort()
}

pub fn segfault(_: ()) -> u64 {
    // SAFETY: changing a signal disposition and raising a signal have no memory effects.
    // Rust's own SIGSEGV handler (for stack overflows) would return from a raised signal, so
    // restore the default action first; then the signal ends the process as a real fault does.
    unsafe {
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    unreachable!("SIGSEGV ends the process")
}

pub fn exit_3(_: ()) -> u64 {
    std::process::exit(3)
}

pub fn sleep_forever(_: ()) -> u64 {
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

pub fn spin_forever(_: ()) -> u64 {
    loop {
        std::hint::spin_loop();
    }
}

/// Bytes that look like the start of a protocol frame: a zero length prefix and a stray byte.
pub const FRAME_LIKE: &str = "frame-like bytes \u{0}\u{0}\u{0}\u{ff}";

/// What [`print_and_square`] prints to stderr, after the item.
pub const ON_STDERR: &str = "to stderr";

pub fn print_and_square(x: u64) -> u64 {
    println!("a task prints {x} to stdout: {FRAME_LIKE}");
    eprintln!("and {x} {ON_STDERR}");
    x * x
}

pub fn checksum(text: String) -> (usize, u64, String) {
    let sum = text.bytes().map(u64::from).sum();
    (text.len(), sum, text)
}

pub fn write_garbage_to_the_protocol(_: ()) -> u64 {
    let garbage = [0xff_u8; 16];
    // SAFETY: fd 3 is the worker's protocol socket; writing bytes to it is exactly the fault
    // under test, and the buffer is valid for its length.
    unsafe { libc::write(3, garbage.as_ptr().cast(), garbage.len()) };
    std::thread::sleep(Duration::from_secs(30));
    0
}

pub fn pid(_: ()) -> u32 {
    std::process::id()
}

pub fn env_and_init(_: ()) -> (Option<String>, bool) {
    (
        std::env::var("PAREXEC_TEST_MODE").ok(),
        INITIALIZED.load(Ordering::SeqCst),
    )
}

pub static INITIALIZED: AtomicBool = AtomicBool::new(false);

pub fn initializer() {
    INITIALIZED.store(true, Ordering::SeqCst);
}

pub fn bad_initializer() {
    deliberate::panic_with("cannot initialize");
}

/// Serializes only when `ok` is set.
#[derive(Debug, Deserialize)]
pub struct Fragile {
    pub ok: bool,
}

impl Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.ok {
            serializer.serialize_bool(true)
        } else {
            Err(serde::ser::Error::custom("Fragile refuses to serialize"))
        }
    }
}

/// Serializes fine, but its `Deserialize` panics.
#[derive(Debug, Serialize)]
pub struct Explosive;

impl<'de> Deserialize<'de> for Explosive {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        deliberate::panic_with("Explosive refuses to deserialize")
    }
}

pub fn make_explosive(_: ()) -> Explosive {
    Explosive
}

pub fn fragile_len(f: Fragile) -> bool {
    f.ok
}

pub fn make_fragile(ok: bool) -> Fragile {
    Fragile { ok }
}

pub fn dies_once(marker: String) -> u64 {
    if std::fs::metadata(&marker).is_err() {
        std::fs::write(&marker, b"died here once").unwrap();
        std::process::abort();
    }
    7
}

pub fn touch(marker: String) -> u64 {
    std::fs::write(&marker, b"ran").unwrap();
    1
}

pub fn temp_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("parexec-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

pub fn short_nap(x: u64) -> u64 {
    std::thread::sleep(Duration::from_micros(200));
    x + 1
}
