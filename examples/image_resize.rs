//! Batch image resizing: decode every image of a directory tree (JPEG, PNG, GIF, TIFF, BMP or
//! WebP, told apart by content) and shrink it to a small grayscale thumbnail, in parallel as
//! the planner recommends, writing the thumbnails as PNGs and/or one NumPy array.
//!
//! The case comes from "Speed Up Your Data Processing: Parallel and Asynchronous Programming
//! in Data Science" (Chin Hwee Ong, PyData Global 2020), section "Image Processing": the
//! 1,431 JPEGs of different dimensions in `train/NORMAL` of the Chest X-Ray Images
//! (Pneumonia) dataset, each opened by path and resized to 64x64
//! (`Image.open(path).resize((64, 64))`) into one `np.array`. Measured there: `map()` 29.48 s,
//! `ProcessPoolExecutor` on 8 cores 6.98 s (about 4.3x).
//!
//! ```sh
//! cargo run --release --example image_resize                      # 300 generated X-ray JPEGs
//! cargo run --release --example image_resize -- --dir chest_xray/train \
//!     --out thumbs/ --npy thumbs.npy --keep-going
//! cargo run --release --example image_resize -- --help
//! ```
//!
//! * The tree below `--dir` is walked recursively (`--max-depth` limits it), in sorted order.
//!   Files are recognised by their content, whatever their extension; a file that is not an
//!   image and not named like one (a README) is skipped and counted.
//! * Each image's size is read from its header first: one over `--max-pixels` (a
//!   decompression bomb) fails up front without being decoded, and stays out of the planner's
//!   pilot, so it cannot skew the plan. Decoders run with the matching memory limit too.
//! * `--out DIR` mirrors the input tree with one PNG per image (`a/b.jpg` -> `DIR/a/b.png`);
//!   `--npy FILE` writes the thumbnails of the images that succeeded, in sorted path order,
//!   as one `uint8` array of shape `(n, size, size)`. Every file is written to a temporary
//!   name and renamed when complete, so no output is ever torn.
//! * Every failure is printed on its own line with its reason, and the exit status is
//!   non-zero if any image failed. Without `--keep-going` the run stops at the first failure
//!   (and the `.npy` is not written); with it, every image is tried.
//! * `--compare-serial` also runs the batch serially, checks the thumbnails are identical and
//!   reports the speedup.
//!
//! Progress bars go to stderr and are hidden when it is not a terminal, so logs stay readable.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use image::imageops::{self, FilterType};
use parexec::{Plan, Planner};

#[path = "support/cli.rs"]
mod cli;
#[path = "support/compare.rs"]
mod compare;
#[path = "support/image_input.rs"]
mod image_input;
#[path = "support/image_output.rs"]
mod image_output;
#[path = "support/npy.rs"]
mod npy;
#[path = "support/output.rs"]
mod output;
#[path = "support/plot.rs"]
mod plot;
#[path = "support/progress.rs"]
mod progress;
#[path = "support/xray.rs"]
mod xray;

use image_input::{Inventory, Job};
use image_output::Outputs;

/// Resize a tree of images to grayscale thumbnails in parallel, as parexec's planner
/// recommends; write them as PNGs (--out) and/or one NumPy array (--npy).
#[derive(Parser, Debug)]
struct Args {
    /// Directory of images, walked recursively (default: a generated set in a temporary directory)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Levels of subfolders to descend into (0: only the files directly in DIR)
    #[arg(long, value_name = "N", requires = "dir")]
    max_depth: Option<usize>,
    /// Number of images to generate when no --dir is given
    #[arg(long, default_value_t = 300, conflicts_with = "dir",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    count: u64,
    /// Seed of the generated images
    #[arg(long, default_value_t = 2020, conflicts_with = "dir")]
    seed: u64,
    /// Side of the square thumbnails, in pixels
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    size: u32,
    /// Largest image to decode, in pixels (Pillow's MAX_IMAGE_PIXELS); larger ones fail unread
    #[arg(long, default_value_t = 89_478_485)]
    max_pixels: u64,
    /// Write one PNG thumbnail per image here, mirroring the input tree
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write all thumbnails as one uint8 NumPy array of shape (n, size, size)
    #[arg(long, value_name = "FILE")]
    npy: Option<PathBuf>,
    /// Try every image even after one fails (the exit status still reports failures)
    #[arg(long)]
    keep_going: bool,
    /// Workers of the run, overriding the planner's count and its decision to stay serial
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: Option<u32>,
    /// Executors the planner may choose from
    #[arg(long, value_enum, default_value_t = cli::ExecutorChoice::Auto)]
    executor: cli::ExecutorChoice,
    /// Least efficiency (speedup per core used) worth running in parallel for, in (0, 1]
    #[arg(long, default_value_t = 0.8, value_parser = cli::threshold)]
    threshold: f64,
    /// Also run the batch serially, check the thumbnails are identical, report the speedup
    #[arg(long)]
    compare_serial: bool,
    /// Draw the plan's speedup curve to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
}

/// Opens the image, decodes it within the memory limit and shrinks it to `side` x `side`
/// grayscale pixels, stretching it as `Image.resize((64, 64))` does. A plain function with
/// serde types, so the very same code runs serially, on a thread pool and in worker processes.
fn thumbnail(job: Job) -> Result<Vec<u8>, String> {
    let image = job.reader().map_err(|e| e.to_string())?;
    let image = image.decode().map_err(|e| e.to_string())?;
    // Converting before resizing filters one channel instead of three or four; Catmull-Rom is
    // bicubic, Pillow's default filter for `resize`.
    let gray = image.into_luma8();
    Ok(imageops::resize(&gray, job.side, job.side, FilterType::CatmullRom).into_raw())
}

fn report_failure(path: &Path, reason: &str) {
    eprintln!("failed: {}: {reason}", path.display());
}

fn main() -> ExitCode {
    parexec::init();
    match run(&Args::parse()) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("{failed} image(s) failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole batch and returns how many images failed.
fn run(args: &Args) -> Result<usize, Box<dyn Error>> {
    let mut outputs = Outputs::open(args.out.as_deref(), args.npy.as_deref(), args.size)?;
    // Lives until `run` returns, whichever way, so generated files outlast the run.
    let generated;
    let root = match &args.dir {
        Some(dir) => dir.as_path(),
        None => {
            generated = tempfile::Builder::new().prefix("image_resize-").tempdir()?;
            xray::generate(generated.path(), args.seed, args.count)?;
            generated.path()
        }
    };
    let Inventory {
        images,
        failures,
        skipped,
    } = image_input::inventory(root, args.max_depth, args.size, args.max_pixels)?;
    for failure in &failures {
        report_failure(&failure.path, &failure.reason);
    }
    println!(
        "input: {} images in {}{}{}",
        images.len(),
        root.display(),
        if args.dir.is_none() {
            format!(" (generated, seed {})", args.seed)
        } else {
            String::new()
        },
        if skipped > 0 {
            format!("; {skipped} files skipped: not images")
        } else {
            String::new()
        },
    );
    if images.is_empty() || (!failures.is_empty() && !args.keep_going) {
        return if failures.is_empty() {
            Err(format!("no images in {}", root.display()).into())
        } else {
            Ok(failures.len())
        };
    }

    let jobs: Vec<Job> = images.iter().map(|found| found.job.clone()).collect();
    // Weighted by pixel count: a large image costs in proportion, even if the pilot missed it.
    let mut plan = Planner::new()
        .threshold(args.threshold)
        .executors(&args.executor.kinds())
        .pilot_weighted_fn(&jobs, thumbnail, |job| job.pixels as f64)
        .plan()
        .map_err(|e| format!("planning failed: {e}"))?;
    println!("{plan}\n");
    if let Some(path) = &args.plot {
        plot::write(&plan, path)?;
    }
    cli::override_workers(&mut plan, args.workers.map(|w| w as usize));

    let bar = progress::bar(Some(jobs.len() as u64), "resizing", "images");
    let started = Instant::now();
    let (mut failed, mut succeeded) = (failures.len(), 0);
    let mut fingerprints = Vec::new();
    let thumbnails = plan
        .map_fn(thumbnail, jobs.clone())?
        .progress_with(bar.clone());
    for (found, result) in images.iter().zip(thumbnails) {
        let outcome = result.map_err(|e| e.to_string()).and_then(|thumb| thumb);
        if args.compare_serial {
            fingerprints.push(compare::fingerprint(&outcome));
        }
        let written = outcome
            .map_err(Into::into)
            .and_then(|pixels| outputs.write(found, &pixels));
        succeeded += usize::from(written.is_ok());
        if let Err(reason) = written {
            report_failure(&found.job.path, &reason.to_string());
            failed += 1;
            if !args.keep_going {
                return Ok(failed);
            }
        }
    }
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    println!(
        "{succeeded} thumbnails of {side}x{side} in {:.2} s ({:.1} ms per image)",
        elapsed.as_secs_f64(),
        1e3 * elapsed.as_secs_f64() / jobs.len() as f64,
        side = args.size,
    );
    if let Some(npy) = outputs.npy.take() {
        let rows = npy.commit()?;
        println!(
            "wrote {rows} thumbnails to {}",
            args.npy.as_deref().unwrap_or(Path::new("")).display()
        );
    }
    if let Some(dir) = &outputs.dir {
        println!("wrote PNG thumbnails below {}", dir.display());
    }
    if args.compare_serial {
        compare_serial(&plan, &jobs, elapsed, &fingerprints)?;
    }
    Ok(failed)
}

/// Runs every job again serially, reports the speedup and fails if any output differs.
fn compare_serial(
    plan: &Plan,
    jobs: &[Job],
    planned: Duration,
    fingerprints: &[u64],
) -> Result<(), Box<dyn Error>> {
    let bar = progress::bar(Some(jobs.len() as u64), "serial", "images");
    let started = Instant::now();
    let serial: Vec<u64> = jobs
        .iter()
        .cloned()
        .map(|job| {
            let print = compare::fingerprint(&thumbnail(job));
            bar.inc(1);
            print
        })
        .collect();
    let serial_time = started.elapsed();
    bar.finish_and_clear();
    compare::report_speedup(plan, serial_time, planned);
    compare::check_identical(&serial, fingerprints, "thumbnails", |i| {
        jobs[i].path.display().to_string()
    })?;
    Ok(())
}

#[cfg(test)]
#[path = "support/help.rs"]
mod help;
#[cfg(test)]
#[path = "image_resize/tests.rs"]
mod tests;
