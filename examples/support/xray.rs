//! Synthetic chest radiographs for the image pipeline when no directory is given: grayscale
//! JPEGs of varied sizes in two class folders, laid out like the Chest X-Ray Images
//! (Pneumonia) dataset, the same for a given seed on every platform.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, GrayImage, ImageEncoder};
use parexec::ThreadPool;

/// Sides of the generated images, in pixels.
pub const MIN_SIDE: u32 = 300;
pub const MAX_SIDE: u32 = 1200;

/// 1 inside the ellipse `x² + y² = 1` (given the squares), 0 outside, with a soft rim.
fn ellipse(x2: f32, y2: f32) -> f32 {
    ((1.0 - x2 - y2) * 10.0).clamp(0.0, 1.0)
}

/// The parts of a pixel's formula that depend only on its column.
struct Column {
    body: f32,
    lung: f32,
    rib_bend: f32,
    spine: f32,
    grain: u32,
}

/// A frontal chest radiograph in caricature: a bright body, two dark lung fields crossed by
/// curved ribs, a spine, and sensor noise. Image `index` of the set `seed` is always the same;
/// its size and anatomy vary from image to image, as in the real dataset.
pub fn synthetic_xray(seed: u64, index: u64) -> GrayImage {
    let mut rng = fastrand::Rng::with_seed(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03));
    let (width, height) = (rng.u32(MIN_SIDE..=MAX_SIDE), rng.u32(MIN_SIDE..=MAX_SIDE));
    let lung_offset = 0.17 + 0.05 * rng.f32();
    let ribs = 7.0 + 4.0 * rng.f32();
    let exposure = 0.8 + 0.4 * rng.f32();
    // Every term is a function of the column or of the row alone, so it is computed once per
    // column or row: generating is set-up, and should not take longer than the workload.
    let columns: Vec<Column> = (0..width)
        .map(|x| {
            let u = x as f32 / width as f32 - 0.5;
            Column {
                body: (u / 0.45).powi(2),
                lung: ((u.abs() - lung_offset) / 0.14).powi(2),
                rib_bend: 1.0 - 3.0 * u * u,
                spine: if u.abs() < 0.04 { 40.0 } else { 0.0 },
                grain: x.wrapping_mul(0x9e37_79b1),
            }
        })
        .collect();
    let mut image = GrayImage::new(width, height);
    for (y, row) in image.chunks_exact_mut(width as usize).enumerate() {
        let v = y as f32 / height as f32;
        let (body_y, lung_y, rib_y) = (
            ((v - 0.55) / 0.5).powi(2),
            ((v - 0.45) / 0.3).powi(2),
            v * ribs,
        );
        let row_key = rng.u32(..);
        for (pixel, column) in row.iter_mut().zip(&columns) {
            let body = ellipse(column.body, body_y);
            let lungs = body * ellipse(column.lung, lung_y);
            // Ribs: the peaks of a triangle wave along the height, bent down away from the
            // midline. The phase is positive (the bend is at least 0.25), so truncation takes
            // its fractional part.
            let phase = rib_y + column.rib_bend;
            let phase = phase - phase as u32 as f32;
            let rib = (0.3 - 2.0 * (phase - 0.5).abs()).max(0.0) / 0.3;
            let grain = ((column.grain ^ row_key).wrapping_mul(0x85eb_ca77) >> 28) as f32 - 8.0;
            let level = exposure * (25.0 + 150.0 * body - 80.0 * lungs + 45.0 * lungs * rib)
                + column.spine * body
                + grain;
            *pixel = level.clamp(0.0, 255.0) as u8;
        }
    }
    image
}

/// The dataset's class folders; image `index` goes to `CLASSES[index % 2]`.
pub const CLASSES: [&str; 2] = ["NORMAL", "PNEUMONIA"];

/// Where image `index` of a set goes below its directory.
pub fn relative_path(index: u64) -> PathBuf {
    Path::new(CLASSES[(index % 2) as usize]).join(format!("xray-{index:05}.jpeg"))
}

/// Writes image `index` of the set `seed` into `dir` and returns its path.
fn write_synthetic(dir: &Path, seed: u64, index: u64) -> Result<PathBuf, String> {
    let path = dir.join(relative_path(index));
    let image = synthetic_xray(seed, index);
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    JpegEncoder::new_with_quality(BufWriter::new(file), 90)
        .write_image(
            image.as_raw(),
            image.width(),
            image.height(),
            ExtendedColorType::L8,
        )
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Generates `count` images into `dir` on a thread pool; image `i` depends only on `seed`
/// and `i`, so the set is the same whatever the scheduling.
pub fn generate(dir: &Path, seed: u64, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let pool = ThreadPool::new(std::thread::available_parallelism().map_or(2, usize::from))?;
    for class in CLASSES {
        std::fs::create_dir_all(dir.join(class))?;
    }
    let target = dir.to_path_buf();
    for written in pool.map(move |i| write_synthetic(&target, seed, i), 0..count) {
        written??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_images_are_deterministic_and_varied() {
        let images: Vec<GrayImage> = (0..3).map(|i| synthetic_xray(7, i)).collect();
        assert_eq!(images[1], synthetic_xray(7, 1));
        assert_ne!(images[1], synthetic_xray(8, 1), "the seed matters");
        let sides = |image: &GrayImage| [image.width(), image.height()];
        assert!(
            images
                .iter()
                .flat_map(sides)
                .all(|side| (MIN_SIDE..=MAX_SIDE).contains(&side))
        );
        assert_ne!(sides(&images[0]), sides(&images[2]), "sizes vary");
    }

    #[test]
    fn generated_images_look_like_a_chest() {
        let image = synthetic_xray(1, 0);
        let (w, h) = image.dimensions();
        let at = |u: f32, v: f32| image.get_pixel((u * w as f32) as u32, (v * h as f32) as u32)[0];
        let (outside, lung, spine) = (at(0.02, 0.02), at(0.3, 0.45), at(0.5, 0.6));
        assert!(outside < lung && lung < spine, "{outside} {lung} {spine}");
    }

    #[test]
    fn a_generated_set_is_written_as_jpegs_in_class_folders() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), 3, 2).unwrap();
        let written = image::open(dir.path().join("PNEUMONIA/xray-00001.jpeg")).unwrap();
        let (written, drawn) = (written.into_luma8(), synthetic_xray(3, 1));
        assert_eq!(written.dimensions(), drawn.dimensions());
        let error: u64 = written
            .iter()
            .zip(drawn.iter())
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        assert!(
            error < 8 * written.len() as u64,
            "lossy, but the same picture"
        );
        assert!(dir.path().join("NORMAL/xray-00000.jpeg").is_file());
    }
}
