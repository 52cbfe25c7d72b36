//! A writer of NumPy `.npy` files (format version 1.0) holding one `uint8` array of shape
//! `(n, side, side)`, streamed: the items are appended as they come and the count is written
//! into the header at the end. The header is padded to a fixed 128 bytes, so rewriting it
//! with the final count never moves the data.

use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

use super::output::AtomicFile;

/// Bytes before the data: magic, version, header length, and the padded header dictionary.
const HEADER_BYTES: usize = 128;

/// A `.npy` file being written, which appears at its path only on [`NpyWriter::commit`].
pub struct NpyWriter {
    file: AtomicFile,
    side: u32,
    count: u64,
}

impl NpyWriter {
    /// Starts the file for `side` x `side` items; fails at once if `path` cannot be written.
    pub fn create(path: &Path, side: u32) -> io::Result<NpyWriter> {
        let mut writer = NpyWriter {
            file: AtomicFile::create(path)?,
            side,
            count: 0,
        };
        let header = writer.header();
        writer.file.file().write_all(&header)?;
        Ok(writer)
    }

    fn header(&self) -> Vec<u8> {
        let side = self.side;
        let dict = format!(
            "{{'descr': '|u1', 'fortran_order': False, 'shape': ({}, {side}, {side}), }}",
            self.count
        );
        let mut header = b"\x93NUMPY\x01\x00".to_vec();
        header.extend_from_slice(&((HEADER_BYTES - 10) as u16).to_le_bytes());
        header.extend_from_slice(dict.as_bytes());
        header.resize(HEADER_BYTES - 1, b' ');
        header.push(b'\n');
        header
    }

    /// Appends one item, `side * side` bytes row by row.
    pub fn append(&mut self, pixels: &[u8]) -> io::Result<()> {
        let expected = self.side as usize * self.side as usize;
        if pixels.len() != expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "an item of {} bytes in an array of {expected}-byte items",
                    pixels.len()
                ),
            ));
        }
        self.file.file().write_all(pixels)?;
        self.count += 1;
        Ok(())
    }

    /// Writes the final count into the header and renames the file into place.
    pub fn commit(mut self) -> io::Result<u64> {
        let header = self.header();
        let file = self.file.file();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        self.file.commit()?;
        Ok(self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_holds_a_v1_header_with_the_final_shape_then_the_items() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thumbs.npy");
        let mut npy = NpyWriter::create(&path, 2).unwrap();
        npy.append(&[1, 2, 3, 4]).unwrap();
        npy.append(&[5, 6, 7, 8]).unwrap();
        assert!(npy.append(&[9]).is_err(), "a wrongly sized item");
        assert!(!path.exists(), "nothing at the path before commit");
        assert_eq!(npy.commit().unwrap(), 2);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0, "the data is 64-byte aligned");
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            header.contains("'shape': (2, 2, 2)") && header.ends_with('\n'),
            "{header}"
        );
        assert_eq!(&bytes[10 + header_len..], [1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
