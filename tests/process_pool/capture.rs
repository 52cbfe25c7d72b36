//! Points this process's stdout and stderr at files for the length of a call. Workers started
//! meanwhile inherit them, so a test can check what its tasks printed, and the bytes they print
//! stay out of the test log.

use std::fs::OpenOptions;
use std::io::{Write, stderr, stdout};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::tasks::temp_path;

/// What was written to stdout and to stderr.
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs `f` with stdout and stderr going to files and returns its value with what was written
/// meanwhile, by this process and by the workers it started. `f` must drop its pools, so that
/// their workers have exited before the files are read. Tests run one at a time, so no other
/// test writes meanwhile. If `f` panics, what was captured (the panic's message included) is
/// copied to the real streams.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    let out = Redirect::new(Stream::Stdout);
    let err = Redirect::new(Stream::Stderr);
    let value = f();
    let captured = Captured {
        stdout: out.finish(),
        stderr: err.finish(),
    };
    (value, captured)
}

#[derive(Clone, Copy)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn number(self) -> RawFd {
        match self {
            Stream::Stdout => libc::STDOUT_FILENO,
            Stream::Stderr => libc::STDERR_FILENO,
        }
    }

    fn duplicate(self) -> OwnedFd {
        match self {
            Stream::Stdout => stdout().as_fd().try_clone_to_owned(),
            Stream::Stderr => stderr().as_fd().try_clone_to_owned(),
        }
        .expect("the stream is duplicated")
    }

    fn write(self, bytes: &[u8]) {
        let _ = match self {
            Stream::Stdout => stdout().write_all(bytes),
            Stream::Stderr => stderr().write_all(bytes),
        };
    }

    /// Makes the stream refer to what `to` refers to.
    fn point_at(self, to: BorrowedFd<'_>) {
        // SAFETY: both descriptors are open for the whole call: `to` is borrowed, and stdout
        // and stderr stay open for the life of the process. `dup2` replaces the stream's
        // descriptor atomically, and no Rust object owns it: `Stdout` and `Stderr` only write
        // to its number, and both were flushed just before.
        let done = unsafe { libc::dup2(to.as_raw_fd(), self.number()) };
        assert_eq!(
            done,
            self.number(),
            "dup2 failed: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// One redirected stream; dropping it points the stream back where it was.
struct Redirect {
    stream: Stream,
    original: OwnedFd,
    path: String,
}

impl Redirect {
    fn new(stream: Stream) -> Self {
        flush();
        let path = temp_path(&format!("captured-{}", stream.number()));
        // Append mode: workers writing at once each add their writes whole at the end.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("the capture file opens");
        let original = stream.duplicate();
        stream.point_at(file.as_fd());
        Redirect {
            stream,
            original,
            path,
        }
    }

    fn finish(self) -> Vec<u8> {
        flush();
        std::fs::read(&self.path).expect("the capture file reads")
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        flush();
        self.stream.point_at(self.original.as_fd());
        if std::thread::panicking() {
            if let Ok(captured) = std::fs::read(&self.path) {
                self.stream.write(&captured);
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn flush() {
    let _ = stdout().flush();
    let _ = stderr().flush();
}
