//! Where the image pipeline's thumbnails go: PNG files mirroring the input tree, and one
//! NumPy array; each file written whole or not at all.

use std::error::Error;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use super::image_input::Found;
use super::npy::NpyWriter;
use super::output::AtomicFile;

/// Writes a thumbnail as a grayscale PNG at `path`, creating its folder, atomically.
fn save_png(path: &Path, pixels: &[u8], side: u32) -> Result<(), Box<dyn Error>> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    let mut file = AtomicFile::create(path)?;
    PngEncoder::new(BufWriter::new(file.file())).write_image(
        pixels,
        side,
        side,
        ExtendedColorType::L8,
    )?;
    file.commit()?;
    Ok(())
}

/// The outputs being written, opened before any work so that a bad path fails at once.
pub struct Outputs {
    pub dir: Option<PathBuf>,
    pub npy: Option<NpyWriter>,
    side: u32,
}

impl Outputs {
    /// `dir` for PNG files, `npy` for the array, thumbnails of `side` x `side`.
    pub fn open(
        dir: Option<&Path>,
        npy: Option<&Path>,
        side: u32,
    ) -> Result<Outputs, Box<dyn Error>> {
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)
                .and_then(|()| tempfile::tempfile_in(dir))
                .map_err(|e| format!("cannot write into {}: {e}", dir.display()))?;
        }
        let npy = npy.map(|path| NpyWriter::create(path, side)).transpose()?;
        Ok(Outputs {
            dir: dir.map(Path::to_path_buf),
            npy,
            side,
        })
    }

    /// Writes the thumbnail of `found`.
    pub fn write(&mut self, found: &Found, pixels: &[u8]) -> Result<(), Box<dyn Error>> {
        if let Some(dir) = &self.dir {
            save_png(&dir.join(&found.output), pixels, self.side)?;
        }
        if let Some(npy) = &mut self.npy {
            npy.append(pixels)?;
        }
        Ok(())
    }
}
