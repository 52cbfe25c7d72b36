//! Output files that appear whole or not at all: written to a temporary file beside the
//! target, flushed to disk, then renamed over it. A failed run removes the temporary file as
//! it unwinds; a killed one may leave a `.partial-*` file behind, but never a torn target.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// A file being written for `target`.
#[derive(Debug)]
pub struct AtomicFile {
    temp: NamedTempFile,
    target: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file in `target`'s directory, which also proves, before any
    /// work, that the target can be written there.
    ///
    /// # Errors
    ///
    /// The target is a directory, its directory does not exist or is not writable.
    pub fn create(target: &Path) -> io::Result<AtomicFile> {
        let context = |e: io::Error| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", target.display()))
        };
        if target.is_dir() {
            return Err(context(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            )));
        }
        let dir = match target.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let temp = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)
            .map_err(context)?;
        Ok(AtomicFile {
            temp,
            target: target.to_path_buf(),
        })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut File {
        self.temp.as_file_mut()
    }

    /// Flushes the data to disk and renames the file over the target.
    ///
    /// # Errors
    ///
    /// Syncing or renaming failed; the target is then unchanged.
    pub fn commit(self) -> io::Result<()> {
        self.temp.as_file().sync_all()?;
        self.temp.persist(&self.target).map(drop).map_err(|e| {
            io::Error::new(
                e.error.kind(),
                format!("cannot write {}: {}", self.target.display(), e.error),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_target_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        std::fs::write(&target, "old").unwrap();
        let mut file = AtomicFile::create(&target).unwrap();
        file.file().write_all(b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
        file.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary file left"
        );
    }

    #[test]
    fn an_abandoned_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = AtomicFile::create(&dir.path().join("out.txt")).unwrap();
        file.file().write_all(b"half a ro").unwrap();
        drop(file);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unwritable_target_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        assert!(AtomicFile::create(dir.path()).is_err(), "a directory");
        let error = AtomicFile::create(&dir.path().join("missing/out.csv")).unwrap_err();
        assert!(error.to_string().contains("missing/out.csv"), "{error}");
    }
}
