//! How a pool tells a process that it is a worker, and how the two recognise each other: the
//! environment variable the parent sets, and the identity of the executable both run. The
//! spawning side ([`spawn`](super::spawn)) and the serving side ([`worker`](super::worker))
//! both build on this, never on each other.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that marks a worker: `<parent pid>:<nonce>:<max frame>`.
pub(crate) const ENV: &str = "PAREXEC_WORKER";

/// Set once this process serves as a worker, so that pools built by tasks inside a worker are
/// told apart from pools built by a worker whose `main` never called [`init`](crate::init).
static SERVING: AtomicBool = AtomicBool::new(false);

/// What the parent told a worker through [`ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WorkerConfig {
    pub(crate) parent: u32,
    pub(crate) nonce: u64,
    pub(crate) max_frame: usize,
}

impl WorkerConfig {
    /// The configuration, if this process was started as a worker by its parent. A process that a
    /// worker starts inherits the variable but has another parent, so it stays ordinary.
    pub(crate) fn from_env() -> Option<Self> {
        let config = WorkerConfig::parse(std::env::var(ENV).ok()?.as_str())?;
        (std::os::unix::process::parent_id() == config.parent).then_some(config)
    }

    pub(crate) fn to_env(self) -> String {
        format!("{}:{}:{}", self.parent, self.nonce, self.max_frame)
    }

    fn parse(value: &str) -> Option<Self> {
        let mut fields = value.split(':');
        let config = WorkerConfig {
            parent: fields.next()?.parse().ok()?,
            nonce: fields.next()?.parse().ok()?,
            max_frame: fields.next()?.parse().ok()?,
        };
        fields.next().is_none().then_some(config)
    }
}

/// Records that this process serves as a worker (its `main` called `init`).
pub(crate) fn serving() {
    SERVING.store(true, Ordering::Relaxed);
}

/// Whether this process was started as a worker but its `main` did not hand over to [`init`](crate::init).
pub(crate) fn is_stray_worker() -> bool {
    !SERVING.load(Ordering::Relaxed) && WorkerConfig::from_env().is_some()
}

/// A hash of this executable's identity on disk; equal in the parent and its workers exactly
/// when they run the same file.
pub(crate) fn identity() -> u64 {
    static IDENTITY: OnceLock<u64> = OnceLock::new();
    *IDENTITY.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let metadata = std::fs::metadata("/proc/self/exe")
            .or_else(|_| std::env::current_exe().and_then(std::fs::metadata));
        let mut hasher = std::hash::DefaultHasher::new();
        match metadata {
            Ok(m) => (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()).hash(&mut hasher),
            // Without metadata, the protocol version and offsets checks still apply.
            Err(_) => 0_u8.hash(&mut hasher),
        }
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_the_environment_format() {
        let config = WorkerConfig {
            parent: 42,
            nonce: 7,
            max_frame: 1 << 20,
        };
        assert_eq!(WorkerConfig::parse(&config.to_env()), Some(config));
        assert_eq!(WorkerConfig::parse("1:2"), None);
        assert_eq!(WorkerConfig::parse("1:2:3:4"), None);
        assert_eq!(WorkerConfig::parse("x:2:3"), None);
    }
}
