//! The pipeline on the committed images in tests/fixtures/images: one small file per
//! supported format (one of them misnamed, two in subfolders, beside a text file), and
//! deliberately broken ones (truncated, not an image, a decompression bomb).

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use clap::CommandFactory;

use super::*;

fn fixtures(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/images")
        .join(folder)
}

fn args(list: &[&OsStr]) -> Args {
    let base = ["image_resize", "--executor", "threads"].map(OsStr::new);
    Args::try_parse_from(base.iter().chain(list)).unwrap()
}

/// The files below `dir`, relative to it, sorted.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn every_format_is_read_by_content_and_mirrored_as_png() {
    let out = tempfile::tempdir().unwrap();
    let npy = out.path().join("all.npy");
    let input = fixtures("good");
    let list = [
        OsStr::new("--dir"),
        input.as_os_str(),
        OsStr::new("--out"),
        out.path().as_os_str(),
        OsStr::new("--workers"),
        OsStr::new("2"),
        OsStr::new("--npy"),
        npy.as_os_str(),
    ];
    assert_eq!(run(&args(&list)).unwrap(), 0, "no image failed");
    let expected = [
        "all.npy",
        "chest-bmp.png",
        "chest-jpeg.png",
        "chest-misnamed.png",
        "chest-png.png",
        "chest-webp.png",
        "nested/chest-gif.png",
        "nested/deeper/chest-tiff.png",
    ];
    assert_eq!(tree(out.path()), expected.map(PathBuf::from));
    let thumb = image::open(out.path().join("nested/deeper/chest-tiff.png")).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (64, 64));
    assert_eq!(
        fs::read(&npy).unwrap().len(),
        128 + 7 * 64 * 64,
        "seven 64x64 thumbnails"
    );
}

#[test]
fn max_depth_limits_the_walk() {
    let found = image_input::inventory(&fixtures("good"), Some(0), 64, u64::MAX).unwrap();
    assert_eq!(
        (found.images.len(), found.skipped),
        (5, 1),
        "no subfolder; notes.txt skipped"
    );
    let found = image_input::inventory(&fixtures("good"), Some(1), 64, u64::MAX).unwrap();
    assert_eq!(found.images.len(), 6);
}

#[test]
fn the_parallel_thumbnails_equal_the_serial_ones() {
    let found = image_input::inventory(&fixtures("good"), None, 16, u64::MAX).unwrap();
    let jobs: Vec<Job> = found.images.into_iter().map(|f| f.job).collect();
    let serial: Vec<_> = jobs.iter().cloned().map(thumbnail).collect();
    let pool = parexec::ThreadPool::new(2).unwrap();
    let parallel = pool
        .map(thumbnail, jobs)
        .chunksize(1)
        .collect_vec()
        .unwrap();
    assert_eq!(parallel, serial);
    assert!(
        serial
            .iter()
            .all(|t| t.as_ref().is_ok_and(|p| p.len() == 16 * 16))
    );
}

#[test]
fn every_failure_is_reported_and_counted_with_keep_going() {
    let out = tempfile::tempdir().unwrap();
    let input = fixtures("");
    let list = [
        OsStr::new("--dir"),
        input.as_os_str(),
        OsStr::new("--out"),
        out.path().as_os_str(),
        OsStr::new("--keep-going"),
    ];
    assert_eq!(run(&args(&list)).unwrap(), 3, "truncated, corrupt and bomb");
    assert_eq!(tree(out.path()).len(), 7, "the good images are all written");
}

#[test]
fn without_keep_going_the_run_stops_and_writes_no_array() {
    let out = tempfile::tempdir().unwrap();
    let npy = out.path().join("all.npy");
    let input = fixtures("broken");
    let list = [
        OsStr::new("--dir"),
        input.as_os_str(),
        OsStr::new("--npy"),
        npy.as_os_str(),
    ];
    assert!(run(&args(&list)).unwrap() > 0);
    assert_eq!(
        tree(out.path()),
        Vec::<PathBuf>::new(),
        "no .npy, no partial file"
    );
}

#[test]
fn broken_files_fail_with_their_reasons_and_a_bomb_stays_out_of_the_plan() {
    let found = image_input::inventory(&fixtures("broken"), None, 64, 89_478_485).unwrap();
    let reasons: Vec<(String, &str)> = found
        .failures
        .iter()
        .map(|f| {
            (
                f.path.file_name().unwrap().to_string_lossy().into_owned(),
                f.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons[0].0 == "bomb.bmp" && reasons[0].1.contains("1600000000 pixels exceed"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].0 == "corrupt.png" && reasons[1].1.contains("not a supported image"),
        "{reasons:?}"
    );
    // The truncated PNG's header is intact: it is planned, and fails when decoded.
    assert_eq!(found.images.len(), 1);
    let error = thumbnail(found.images[0].job.clone()).unwrap_err();
    assert!(!error.is_empty());
}

#[test]
fn a_file_name_that_is_not_utf8_is_still_a_path() {
    let dir = tempfile::tempdir().unwrap();
    let name = OsStr::from_bytes(b"caf\xe9.png");
    fs::copy(fixtures("good/chest-png.png"), dir.path().join(name)).unwrap();
    let out = tempfile::tempdir().unwrap();
    let list = [
        OsStr::new("--dir"),
        dir.path().as_os_str(),
        OsStr::new("--out"),
        out.path().as_os_str(),
    ];
    assert_eq!(run(&args(&list)).unwrap(), 0);
    assert!(out.path().join(name).is_file());
}

#[test]
fn a_bad_output_fails_before_any_work() {
    let list = [
        OsStr::new("--dir"),
        OsStr::new("/nonexistent"),
        OsStr::new("--npy"),
        OsStr::new("/nonexistent/x.npy"),
    ];
    let error = run(&args(&list)).unwrap_err().to_string();
    assert!(error.contains("/nonexistent/x.npy"), "{error}");
}

#[test]
fn help_lists_every_option() {
    crate::help::assert_lists(
        Args::command(),
        &[
            "--dir",
            "--max-depth",
            "--count",
            "--seed",
            "--size",
            "--max-pixels",
            "--out",
            "--npy",
            "--keep-going",
            "--executor",
            "--workers",
            "--threshold",
            "--compare-serial",
        ],
    );
}

/// Writes the committed fixtures again: `cargo test --example image_resize -- --ignored`.
#[test]
#[ignore = "rewrites the committed fixtures"]
fn regenerate_fixtures() {
    use image::{DynamicImage, ImageFormat};
    let xray = xray::synthetic_xray(2020, 0);
    let small = DynamicImage::ImageLuma8(imageops::resize(&xray, 96, 80, FilterType::Triangle));
    let good = fixtures("good");
    for (name, format) in [
        ("chest-jpeg.jpg", ImageFormat::Jpeg),
        ("chest-png.png", ImageFormat::Png),
        ("chest-bmp.bmp", ImageFormat::Bmp),
        ("chest-webp.webp", ImageFormat::WebP),
        ("nested/chest-gif.gif", ImageFormat::Gif),
        ("nested/deeper/chest-tiff.tiff", ImageFormat::Tiff),
        // JPEG content under a PNG name.
        ("chest-misnamed.png", ImageFormat::Jpeg),
    ] {
        let image = if matches!(format, ImageFormat::WebP | ImageFormat::Gif) {
            DynamicImage::ImageRgb8(small.to_rgb8())
        } else {
            small.clone()
        };
        image.save_with_format(good.join(name), format).unwrap();
    }
    fs::write(
        good.join("notes.txt"),
        "Chest X-ray thumbnails: test images, not patient data.\n",
    )
    .unwrap();
    // Half a PNG: the header and so the size read, the pixel data ends early.
    let png = fs::read(good.join("chest-png.png")).unwrap();
    let broken = fixtures("broken");
    fs::write(broken.join("truncated.png"), &png[..png.len() / 2]).unwrap();
    fs::write(
        broken.join("corrupt.png"),
        b"these bytes are no PNG at all\n",
    )
    .unwrap();
    // A BMP header claiming 40000 x 40000 pixels of 24 bits, with no pixel data.
    let mut bomb = b"BM".to_vec();
    for field in [54_u32, 0, 54, 40, 40_000, 40_000] {
        bomb.extend_from_slice(&field.to_le_bytes());
    }
    bomb.extend_from_slice(&1_u16.to_le_bytes());
    bomb.extend_from_slice(&24_u16.to_le_bytes());
    bomb.extend_from_slice(&[0; 24]);
    fs::write(broken.join("bomb.bmp"), bomb).unwrap();
}
