//! Finding the images of a directory tree for the image pipeline: a recursive walk, the
//! format detected from the content, and the size read from the header, so that a file the
//! memory limit will reject (a decompression bomb) is reported up front and kept out of the
//! plan and the run.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use image::{ImageFormat, ImageReader, Limits};
use serde::{Deserialize, Serialize};

/// One task: an image to shrink. Plain data, because a process pool sends it to another
/// process; the path travels as raw bytes, so a name that is not UTF-8 is still a path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    #[serde(with = "path_bytes")]
    pub path: PathBuf,
    /// Side of the square thumbnail.
    pub side: u32,
    /// The most pixels a decoded image may have.
    pub max_pixels: u64,
    /// The image's pixels, from its header: what decoding and resizing cost is proportional to.
    pub pixels: u64,
}

impl Job {
    /// Opens the image with the format taken from its content and the memory limit applied.
    pub fn reader(&self) -> io::Result<ImageReader<io::BufReader<fs::File>>> {
        let mut reader = content_reader(&self.path)?;
        let mut limits = Limits::default();
        // Room for the widest pixel type the decoders produce (four 16-bit channels).
        limits.max_alloc = Some(self.max_pixels.saturating_mul(8));
        reader.limits(limits);
        Ok(reader)
    }
}

/// An image found, and where its output goes below the output directory.
#[derive(Debug)]
pub struct Found {
    pub job: Job,
    /// The input's path below the input directory, with the extension `.png`.
    pub output: PathBuf,
}

/// A file that cannot be processed, and why.
#[derive(Debug, PartialEq)]
pub struct Failure {
    pub path: PathBuf,
    pub reason: String,
}

/// What a walk over the input found.
#[derive(Debug, Default)]
pub struct Inventory {
    pub images: Vec<Found>,
    pub failures: Vec<Failure>,
    /// Files that are neither images by content nor by name (notes, CSVs).
    pub skipped: usize,
}

/// Walks `root` (down to `max_depth` levels of subfolders, all without a limit) in sorted
/// order and sorts every file into an image, a failure, or a file to skip.
pub fn inventory(
    root: &Path,
    max_depth: Option<usize>,
    side: u32,
    max_pixels: u64,
) -> io::Result<Inventory> {
    let mut files = Vec::new();
    let mut inventory = Inventory::default();
    walk(root, max_depth, &mut files, &mut inventory.failures)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", root.display())))?;
    files.sort();
    let mut outputs: HashMap<PathBuf, PathBuf> = HashMap::new();
    for path in files {
        let fail = |reason: String| Failure {
            path: path.clone(),
            reason,
        };
        let pixels = match probe(&path) {
            Probe::Image(pixels) => pixels,
            Probe::NotImage => {
                inventory.skipped += 1;
                continue;
            }
            Probe::Failed(reason) => {
                inventory.failures.push(fail(reason));
                continue;
            }
        };
        if pixels > max_pixels {
            inventory.failures.push(fail(format!(
                "{pixels} pixels exceed the limit of {max_pixels} (--max-pixels): skipped \
                 without decoding, as a likely decompression bomb"
            )));
            continue;
        }
        let output = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .with_extension("png");
        if let Some(first) = outputs.insert(output.clone(), path.clone()) {
            inventory.failures.push(fail(format!(
                "its thumbnail {} would overwrite that of {}",
                output.display(),
                first.display()
            )));
            continue;
        }
        let job = Job {
            path,
            side,
            max_pixels,
            pixels,
        };
        inventory.images.push(Found { job, output });
    }
    Ok(inventory)
}

fn walk(
    dir: &Path,
    depth_left: Option<usize>,
    files: &mut Vec<PathBuf>,
    failures: &mut Vec<Failure>,
) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // The entry's own type: a symbolic link to a folder is not followed, so no cycle.
        if entry.file_type()?.is_dir() {
            match depth_left {
                Some(0) => {}
                _ => {
                    if let Err(e) = walk(&path, depth_left.map(|d| d - 1), files, failures) {
                        failures.push(Failure {
                            path,
                            reason: format!("cannot read the folder: {e}"),
                        });
                    }
                }
            }
        } else if path.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

enum Probe {
    /// An image of this many pixels.
    Image(u64),
    NotImage,
    Failed(String),
}

/// Reads the format from the first bytes and the size from the header, decoding nothing.
fn probe(path: &Path) -> Probe {
    let reader = match content_reader(path) {
        Ok(reader) => reader,
        Err(e) => return Probe::Failed(e.to_string()),
    };
    if reader.format().is_none() {
        // Named like an image but not one inside: broken. Named otherwise: not ours.
        return match ImageFormat::from_path(path) {
            Ok(named) => Probe::Failed(format!(
                "the content is not a supported image, though the name says {named:?}"
            )),
            Err(_) => Probe::NotImage,
        };
    }
    match reader.into_dimensions() {
        Ok((width, height)) => Probe::Image(u64::from(width) * u64::from(height)),
        Err(e) => Probe::Failed(e.to_string()),
    }
}

/// A reader of `path` whose format comes from the content alone, never from the name.
fn content_reader(path: &Path) -> io::Result<ImageReader<io::BufReader<fs::File>>> {
    ImageReader::new(io::BufReader::new(fs::File::open(path)?)).with_guessed_format()
}

/// Serde for a path as its raw bytes (Unix), or as text where paths are text anyway.
mod path_bytes {
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[cfg(unix)]
    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        use std::os::unix::ffi::OsStrExt;
        path.as_os_str().as_bytes().serialize(serializer)
    }

    #[cfg(unix)]
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        use std::os::unix::ffi::OsStringExt;
        Vec::<u8>::deserialize(deserializer).map(|bytes| std::ffi::OsString::from_vec(bytes).into())
    }

    #[cfg(not(unix))]
    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        path.serialize(serializer)
    }

    #[cfg(not(unix))]
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        PathBuf::deserialize(deserializer)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn a_job_with_a_non_utf8_path_survives_a_round_trip_through_bytes() {
        let path = PathBuf::from(OsStr::from_bytes(b"/tmp/caf\xe9.png"));
        let job = Job {
            path,
            side: 64,
            max_pixels: 10,
            pixels: 4,
        };
        let bytes = serde_json::to_vec(&job).unwrap();
        assert_eq!(serde_json::from_slice::<Job>(&bytes).unwrap(), job);
    }
}
