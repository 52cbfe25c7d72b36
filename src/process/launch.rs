//! How a pool tells a process that it is a worker, and how the two recognise each other: the
//! environment variable the parent sets, and the identity of the executable both run. The
//! spawning side ([`spawn`](super::spawn)) and the serving side ([`worker`](super::worker))
//! both build on this, never on each other.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
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

/// The identity of the executable this process runs: equal in two processes exactly when
/// they run the same build, on this machine or another. Computed once per process.
///
/// It is the build id the linker wrote (the ELF `NT_GNU_BUILD_ID` note, or the Mach-O
/// `LC_UUID`), found in the headers in microseconds; an executable without one is identified
/// by a hash of its whole content instead (about 3 ms per 10 MB in a release build). Either way it depends on the file's bytes, never on where or when it was
/// written, so a copy on another machine has the same identity.
pub(crate) fn identity() -> u64 {
    static IDENTITY: OnceLock<u64> = OnceLock::new();
    *IDENTITY.get_or_init(|| {
        let path = if cfg!(target_os = "linux") {
            Ok(PathBuf::from("/proc/self/exe"))
        } else {
            std::env::current_exe()
        };
        // Unreadable: the protocol version and the code-offset probe still have to match.
        path.and_then(|path| identity_of(&path)).unwrap_or(0)
    })
}

/// The identity of the executable at `path`; see [`identity`].
pub(crate) fn identity_of(path: &Path) -> std::io::Result<u64> {
    let file = std::fs::File::open(path)?;
    let mut hasher = std::hash::DefaultHasher::new();
    match build_id(&object::read::ReadCache::new(&file)) {
        Some(id) => {
            b"build-id".hash(&mut hasher);
            id.hash(&mut hasher);
        }
        None => {
            b"content".hash(&mut hasher);
            hash_content(&file, &mut hasher)?;
        }
    }
    Ok(hasher.finish())
}

/// The linker's build id: the ELF `NT_GNU_BUILD_ID` note, found through the program headers
/// alone (so only the headers and the note are read, never the symbol tables of a large
/// debug build), or the Mach-O UUID.
fn build_id<'a, R: object::ReadRef<'a>>(data: R) -> Option<Vec<u8>> {
    use object::elf::{FileHeader32, FileHeader64};
    use object::{Endianness, FileKind};
    match FileKind::parse(data).ok()? {
        FileKind::Elf64 => elf_build_id::<FileHeader64<Endianness>, R>(data),
        FileKind::Elf32 => elf_build_id::<FileHeader32<Endianness>, R>(data),
        FileKind::MachO32 | FileKind::MachO64 | FileKind::MachOFat32 | FileKind::MachOFat64 => {
            use object::Object;
            let uuid = object::File::parse(data).ok()?.mach_uuid().ok()??;
            Some(uuid.to_vec())
        }
        _ => None,
    }
}

fn elf_build_id<'a, Elf, R>(data: R) -> Option<Vec<u8>>
where
    Elf: object::read::elf::FileHeader<Endian = object::Endianness>,
    R: object::ReadRef<'a>,
{
    use object::read::elf::ProgramHeader;
    let header = Elf::parse(data).ok()?;
    let endian = header.endian().ok()?;
    for segment in header.program_headers(endian, data).ok()? {
        let Ok(Some(mut notes)) = segment.notes(endian, data) else {
            continue;
        };
        while let Ok(Some(note)) = notes.next() {
            if note.name() == object::elf::ELF_NOTE_GNU
                && note.n_type(endian) == object::elf::NT_GNU_BUILD_ID
                && !note.desc().is_empty()
            {
                return Some(note.desc().to_vec());
            }
        }
    }
    None
}

fn hash_content(mut file: &std::fs::File, hasher: &mut impl Hasher) -> std::io::Result<()> {
    use std::io::{Read, Seek};
    file.rewind()?;
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(()),
            Ok(n) => hasher.write(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
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
