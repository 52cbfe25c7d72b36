//! Batch image resizing: decode every PNG of a directory and shrink it to a small grayscale
//! thumbnail, serially, on threads, on worker processes, and as the planner recommends.
//!
//! The case comes from "Speed Up Your Data Processing: Parallel and Asynchronous Programming
//! in Data Science" (Chin Hwee Ong, PyData Global 2020), section "Image Processing": the
//! 1,431 images of different dimensions in `train/NORMAL` of the Chest X-Ray Images
//! (Pneumonia) dataset, each opened by path and resized to 64x64
//! (`Image.open(path).resize((64, 64))`). Measured there: `map()` 29.48 s, a list
//! comprehension 29.71 s, `ProcessPoolExecutor` on 8 cores 6.98 s (about 4.3x). The lessons:
//! CPU-bound work needs processes in Python, and not everything is worth parallelising
//! (overheads, Amdahl's law). In Rust threads run CPU-bound code in parallel too, so this
//! example runs the same task on both kinds of pool and lets the numbers speak.
//!
//! ```sh
//! cargo run --release --example image_resize                      # generated input
//! cargo run --release --example image_resize -- --dir chest_xray/train/NORMAL
//! cargo run --release --example image_resize -- --help
//! ```
//!
//! Options:
//!
//! * `--dir <DIR>`: resize the `.png` files of DIR (not its subdirectories). Without it, a
//!   deterministic set of synthetic chest-X-ray-like grayscale PNGs, 300 to 1200 px per side,
//!   is generated into a temporary directory that is removed at the end, also on error.
//! * `--count <N>` (default 300) and `--seed <S>`: size and seed of the generated set.
//! * `--size <PX>` (default 64): side of the square thumbnails.
//! * `--workers <N>` (default: the usable cores): workers of the threads-versus-processes
//!   comparison; the planned run uses the planner's own count.
//! * `--threshold <E>` (default 0.8): the efficiency below which parallelism is not worth it.
//! * `--repeat <N>` (default 3): passes over the four configurations; the table keeps each
//!   one's fastest run.
//!
//! Output: a line on the input, the machine as the planner calibrated it, the planner's
//! report (a pilot weighted by each image's pixel count; threads and processes both
//! considered), one line per pass with the time of each configuration (serial, threads xN,
//! processes xN, the plan), confirmation that every output of every run equals the serial
//! one item by item, and a table of seconds, speedup and efficiency (speedup per core used)
//! against the 80% rule of thumb: "parallelise only when efficiency is at least 80%", then
//! whether the measurements agree with the plan. On an idle 2-core machine expect about
//! 4-5 ms per image, both pools near 1.9x, and a plan of two threads; about 10-15 s in all.
//! The process exits non-zero if any output differs from the serial one.
//!
//! Speedups mean something only on an otherwise idle machine: interleaving the passes and
//! keeping the fastest absorbs short bursts of other load, not a busy machine. Progress bars
//! go to stderr and are hidden when it is not a terminal, so logs stay readable.

use std::error::Error;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use image::codecs::png::{CompressionType, FilterType as PngFilter, PngEncoder};
use image::imageops::{self, FilterType};
use image::{ExtendedColorType, GrayImage, ImageEncoder};
use indicatif::{ProgressBar, ProgressStyle};
use parexec::{Executor, ExecutorKind, Map, Plan, Planner, ProcessPool, ThreadPool};
use support::SplitMix64;

mod support;

/// Sides of the generated images, in pixels.
const MIN_SIDE: u32 = 300;
const MAX_SIDE: u32 = 1200;

/// One task: the image's path and the thumbnail's side. A tuple of plain data, because a
/// process pool sends the argument to another process.
type Job = (String, u32);

/// A thumbnail's pixels, row by row, or why this one image failed.
type Thumbnail = Result<Vec<u8>, String>;

#[derive(Parser, Debug)]
#[command(
    about = "Resize a batch of PNG images to grayscale thumbnails: serially, on threads, \
                   on processes, and as parexec's planner recommends"
)]
struct Args {
    /// Directory of .png images to resize (default: a generated set in a temporary directory)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,

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

    /// Workers of the threads and processes runs (default: the usable cores)
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: Option<u32>,

    /// Least efficiency (speedup per core used) worth running in parallel for
    #[arg(long, default_value_t = 0.8)]
    threshold: f64,

    /// Passes over every configuration; the table keeps each one's fastest
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
}

/// Opens the image at `path` and shrinks it to `side` x `side` grayscale pixels, stretching
/// it as `Image.resize((64, 64))` does. A plain function with serde types, so the very same
/// code runs serially, on a thread pool and in worker processes.
fn thumbnail((path, side): Job) -> Thumbnail {
    let image = image::open(&path).map_err(|e| format!("{path}: {e}"))?;
    // Converting before resizing filters one channel instead of three or four.
    let gray = image.into_luma8();
    // Catmull-Rom is bicubic, Pillow's default filter for `resize`.
    Ok(imageops::resize(&gray, side, side, FilterType::CatmullRom).into_raw())
}

/// The pilot's weight of a job: its pixel count, read from the PNG header, since decoding
/// and resizing cost about the same per pixel. Zero for an unreadable file, which fails fast.
fn pixels((path, _): &Job) -> f64 {
    image::image_dimensions(path).map_or(0.0, |(w, h)| f64::from(w) * f64::from(h))
}

/// The generated set's randomness: the same images on every platform.
struct Rng(SplitMix64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn side(&mut self) -> u32 {
        MIN_SIDE + (self.next_u64() % u64::from(MAX_SIDE - MIN_SIDE + 1)) as u32
    }
}

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
fn synthetic_xray(seed: u64, index: u64) -> GrayImage {
    let mut rng = Rng(SplitMix64(seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03)));
    let (width, height) = (rng.side(), rng.side());
    let lung_offset = 0.17 + 0.05 * rng.unit();
    let ribs = 7.0 + 4.0 * rng.unit();
    let exposure = 0.8 + 0.4 * rng.unit();
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
        let row_key = rng.next_u64() as u32;
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

/// Writes image `index` of the set `seed` into `dir` and returns its path.
fn write_synthetic(dir: &Path, seed: u64, index: u64) -> Result<String, String> {
    let path = dir.join(format!("xray-{index:05}.png"));
    let image = synthetic_xray(seed, index);
    let file = File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Fast compression: the default level would make writing the set slower than resizing it.
    PngEncoder::new_with_quality(
        BufWriter::new(file),
        CompressionType::Fast,
        PngFilter::Adaptive,
    )
    .write_image(
        image.as_raw(),
        image.width(),
        image.height(),
        ExtendedColorType::L8,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    path.into_os_string()
        .into_string()
        .map_err(|p| format!("{}: not valid UTF-8", p.to_string_lossy()))
}

/// A directory created fresh and removed with everything in it when dropped, so that an
/// early return or a panic leaves no files behind.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> std::io::Result<Self> {
        static CREATED: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "{prefix}-{}-{nanos}-{}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        ));
        // `create_dir`, not `create_dir_all`: fail rather than adopt someone else's directory.
        fs::create_dir(&path)?;
        Ok(TempDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("warning: could not remove {}: {e}", self.0.display());
        }
    }
}

/// The `.png` files directly in `dir`, sorted so that runs are repeatable.
fn list_pngs(dir: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    let context = |e: std::io::Error| format!("cannot read {}: {e}", dir.display());
    let mut paths = Vec::new();
    for entry in fs::read_dir(dir).map_err(context)? {
        let path = entry.map_err(context)?.path();
        let is_png = path
            .extension()
            .is_some_and(|ext| ext.eq_ignore_ascii_case("png"));
        if is_png && path.is_file() {
            let path = path
                .into_os_string()
                .into_string()
                .map_err(|p| format!("{}: file name is not valid UTF-8", p.to_string_lossy()))?;
            paths.push(path);
        }
    }
    paths.sort();
    if paths.is_empty() {
        return Err(format!("no .png files in {}", dir.display()).into());
    }
    Ok(paths)
}

/// Generates `count` images into `dir` on a thread pool; image `i` depends only on `seed`
/// and `i`, so the set is the same whatever the scheduling.
fn generate(
    dir: &Path,
    seed: u64,
    count: u64,
    style: &ProgressStyle,
) -> Result<Vec<String>, Box<dyn Error>> {
    let pool = ThreadPool::new(std::thread::available_parallelism().map_or(2, usize::from))?;
    let bar = progress(style, count, "generating");
    let target = dir.to_path_buf();
    let mut paths = Vec::new();
    for written in pool.map(move |i| write_synthetic(&target, seed, i), 0..count) {
        paths.push(written??);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(paths)
}

fn progress(style: &ProgressStyle, len: u64, label: &str) -> ProgressBar {
    ProgressBar::new(len)
        .with_style(style.clone())
        .with_message(label.to_owned())
}

/// One timed pass over every job.
struct Run {
    label: String,
    workers: usize,
    elapsed: Duration,
    outputs: Vec<Thumbnail>,
}

fn run_serial(jobs: &[Job], style: &ProgressStyle) -> Run {
    let bar = progress(style, jobs.len() as u64, "serial");
    let started = Instant::now();
    let outputs = jobs
        .iter()
        .cloned()
        .map(|job| {
            let thumb = thumbnail(job);
            bar.inc(1);
            thumb
        })
        .collect();
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Run {
        label: "serial".to_owned(),
        workers: 1,
        elapsed,
        outputs,
    }
}

/// Runs every job on a pool built by `start`, threads or processes alike; the time includes
/// starting and stopping the pool, which a real program pays too.
fn run_pool<E: Executor>(
    start: impl FnOnce() -> Result<E, parexec::Error>,
    jobs: &[Job],
    style: &ProgressStyle,
) -> Result<Run, parexec::Error> {
    let started = Instant::now();
    let pool = start()?;
    let label = format!("{} x{}", pool.kind(), pool.workers());
    let outputs = gather(
        pool.map(thumbnail, jobs.to_vec()),
        jobs,
        progress(style, jobs.len() as u64, &label),
    );
    pool.shutdown();
    Ok(Run {
        label,
        workers: pool.workers(),
        elapsed: started.elapsed(),
        outputs,
    })
}

/// Runs every job as `plan` decided: inline when it stays serial, otherwise on a pool of its
/// kind, size and chunk size, which the plan starts on its first run (timed) and keeps.
fn run_planned(plan: &Plan, jobs: &[Job], style: &ProgressStyle) -> Result<Run, parexec::Error> {
    let (label, workers) = if plan.parallel {
        (
            format!("planned: {} x{}", plan.kind, plan.workers),
            plan.workers,
        )
    } else {
        ("planned: serial".to_owned(), 1)
    };
    let bar = progress(style, jobs.len() as u64, &label);
    let started = Instant::now();
    let outputs = gather(plan.map(thumbnail, jobs.to_vec())?, jobs, bar);
    Ok(Run {
        label,
        workers,
        elapsed: started.elapsed(),
        outputs,
    })
}

/// Collects a map's results in input order while ticking `bar` in completion order, so the
/// bar moves smoothly even when a large image holds up the head of the queue. A failure of
/// the pool itself (a dead worker, say) becomes that item's error.
fn gather<I: Iterator>(
    results: Map<'_, I, Thumbnail>,
    jobs: &[Job],
    bar: ProgressBar,
) -> Vec<Thumbnail> {
    let mut outputs: Vec<Thumbnail> = jobs
        .iter()
        .map(|(path, _)| Err(format!("{path}: no result")))
        .collect();
    for (index, result) in results.unordered() {
        outputs[index] = result.unwrap_or_else(|e| Err(format!("{}: {e}", jobs[index].0)));
        bar.inc(1);
    }
    bar.finish_and_clear();
    outputs
}

/// Indices of the items whose outputs differ.
fn mismatches(expected: &[Thumbnail], actual: &[Thumbnail]) -> Vec<usize> {
    let extra = expected.len().abs_diff(actual.len());
    let differing = expected
        .iter()
        .zip(actual)
        .enumerate()
        .filter(|(_, (e, a))| e != a);
    differing
        .map(|(i, _)| i)
        .chain((0..extra).map(|k| expected.len().min(actual.len()) + k))
        .collect()
}

/// Speedup per core in use, `None` for a single worker. Workers beyond the cores add no
/// compute, so they do not lower the figure; that is how the planner counts too.
fn efficiency(speedup: f64, workers: usize, cores: usize) -> Option<f64> {
    (workers > 1).then(|| speedup / workers.min(cores.max(1)) as f64)
}

fn main() -> ExitCode {
    parexec::init();
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn Error>> {
    let style = ProgressStyle::with_template(
        "{msg:<22} [{bar:32}] {pos}/{len} images, {elapsed} (eta {eta})",
    )?
    .progress_chars("=> ");

    // Lives until `run` returns, whichever way, so the generated files outlast every pass
    // and are removed after it.
    let generated;
    let paths = match &args.dir {
        Some(dir) => {
            let paths = list_pngs(dir)?;
            println!("input: {} PNG files in {}", paths.len(), dir.display());
            paths
        }
        None => {
            generated = TempDir::new("image_resize")?;
            let started = Instant::now();
            let paths = generate(generated.path(), args.seed, args.count, &style)?;
            println!(
                "input: {} synthetic chest X-ray-like PNGs, {MIN_SIDE}-{MAX_SIDE} px per side \
                 (seed {}), generated in {:.2} s into {}",
                paths.len(),
                args.seed,
                started.elapsed().as_secs_f64(),
                generated.path().display()
            );
            paths
        }
    };
    let bytes: u64 = paths
        .iter()
        .filter_map(|p| fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "task: open, decode, convert to grayscale, resize to {0}x{0} (Catmull-Rom); {1:.1} MB of PNG\n",
        args.size,
        bytes as f64 / 1e6
    );
    let jobs: Vec<Job> = paths.into_iter().map(|p| (p, args.size)).collect();

    let plan = Planner::new()
        .threshold(args.threshold)
        .pilot_weighted(&jobs, thumbnail, pixels)
        .executors(&[ExecutorKind::Threads, ExecutorKind::Processes])
        .plan()
        .map_err(|e| format!("planning failed: {e}"))?;
    let cores = plan.machine.usable_cores;
    // The planner's one measurement of the machine: other load while it ran shows up here
    // as a low figure, and lowers every predicted speedup.
    println!(
        "machine: {cores} usable cores, each beyond the first adding {:.0}% of a core (calibrated)",
        100.0 * plan.machine.core_efficiency
    );
    println!("{plan}\n");
    let workers = args.workers.map_or(cores, |w| w as usize);

    let fastest = measure(&jobs, &plan, workers, args.repeat, &style)?;
    println!(
        "\nverified: in every pass, all {} outputs of every run equal the serial ones, item by item",
        jobs.len()
    );
    let serial_outputs = fastest.first().map(|run| run.outputs.as_slice());
    let failed: Vec<&String> = serial_outputs
        .unwrap_or_default()
        .iter()
        .filter_map(|o| o.as_ref().err())
        .collect();
    if let Some(first) = failed.first() {
        println!(
            "{} of {} images failed, in every run alike (first: {first})",
            failed.len(),
            jobs.len()
        );
    }
    report(&fastest, &plan, args.threshold);
    Ok(())
}

/// Runs serial, threads, processes and the plan `repeat` times in turn, so that a burst of
/// load from elsewhere hits one pass rather than one configuration, and keeps each one's
/// fastest run. Fails after the first pass in which any output differs from the serial one.
fn measure(
    jobs: &[Job],
    plan: &Plan,
    workers: usize,
    repeat: u32,
    style: &ProgressStyle,
) -> Result<Vec<Run>, Box<dyn Error>> {
    let mut fastest: Vec<Run> = Vec::new();
    for pass in 1..=repeat {
        let runs = [
            run_serial(jobs, style),
            run_pool(|| ThreadPool::new(workers), jobs, style)?,
            run_pool(|| ProcessPool::new(workers), jobs, style)?,
            run_planned(plan, jobs, style)?,
        ];
        let times: Vec<String> = runs
            .iter()
            .map(|r| format!("{} {:.2} s", r.label, r.elapsed.as_secs_f64()))
            .collect();
        println!("pass {pass}/{repeat}: {}", times.join(" | "));
        let expected = fastest.first().map_or(&runs[0].outputs, |r| &r.outputs);
        let mut differs = false;
        for run in &runs {
            let differing = mismatches(expected, &run.outputs);
            if let Some(&first) = differing.first() {
                differs = true;
                println!(
                    "  MISMATCH: {}: {} of {} outputs differ from serial (first: {})",
                    run.label,
                    differing.len(),
                    jobs.len(),
                    jobs.get(first).map_or("(missing)", |(path, _)| path)
                );
            }
        }
        if differs {
            return Err("parallel outputs differ from the serial ones".into());
        }
        for (position, run) in runs.into_iter().enumerate() {
            match fastest.get_mut(position) {
                Some(best) if best.elapsed <= run.elapsed => {}
                Some(best) => *best = run,
                None => fastest.push(run),
            }
        }
    }
    Ok(fastest)
}

/// The results table, serial first, and how the planner's decision compares with it.
fn report(fastest: &[Run], plan: &Plan, threshold: f64) {
    let Some(serial) = fastest.first() else {
        return;
    };
    println!(
        "\n{:<24} {:>8} {:>8} {:>11}  rule (efficiency >= {threshold:.2})",
        "fastest pass", "seconds", "speedup", "efficiency"
    );
    let mut meets_rule = Vec::new();
    for run in fastest {
        let speedup = serial.elapsed.as_secs_f64() / run.elapsed.as_secs_f64();
        let efficiency = efficiency(speedup, run.workers, plan.machine.usable_cores);
        let verdict = match efficiency {
            Some(e) if e >= threshold => {
                meets_rule.push(run.label.as_str());
                "met"
            }
            Some(_) => "not met",
            None => "-",
        };
        println!(
            "{:<24} {:>8.2} {:>7.2}x {:>11}  {verdict}",
            run.label,
            run.elapsed.as_secs_f64(),
            speedup,
            efficiency.map_or_else(|| "-".to_owned(), |e| format!("{e:.2}"))
        );
    }
    let decided = if plan.parallel {
        format!("parallel, {} x{}", plan.kind, plan.workers)
    } else {
        "serial".to_owned()
    };
    let measured = if meets_rule.is_empty() {
        "no parallel run met the rule".to_owned()
    } else {
        format!("the rule was met by {}", meets_rule.join(", "))
    };
    println!(
        "\nplanner: {decided} (predicted {:.2}x, efficiency {:.2}); measured: {measured}",
        plan.speedup, plan.efficiency
    );
    if plan.parallel == meets_rule.is_empty() {
        println!(
            "the measurements disagree with the plan, which rests on one calibration and a \
             short pilot: a small input or other load on the machine skews either side"
        );
    } else {
        println!("the measurements agree with the plan");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use image::Luma;

    fn write_png(dir: &Path, name: &str, image: &GrayImage) -> String {
        let path = dir.join(name);
        image.save(&path).unwrap();
        path.into_os_string().into_string().unwrap()
    }

    #[test]
    fn thumbnails_have_the_requested_shape_whatever_the_input_shape() {
        let dir = TempDir::new("image_resize-test").unwrap();
        let wide = write_png(dir.path(), "wide.png", &GrayImage::new(300, 120));
        let tall = write_png(dir.path(), "tall.png", &GrayImage::new(90, 250));
        for path in [wide, tall] {
            assert_eq!(thumbnail((path.clone(), 64)).unwrap().len(), 64 * 64);
            assert_eq!(thumbnail((path, 10)).unwrap().len(), 10 * 10);
        }
    }

    #[test]
    fn a_bad_file_fails_only_its_item_with_its_path() {
        let dir = TempDir::new("image_resize-test").unwrap();
        let junk = dir.path().join("junk.png");
        fs::write(&junk, b"not a png").unwrap();
        let junk = junk.into_os_string().into_string().unwrap();
        let missing = dir.path().join("missing.png").display().to_string();
        for path in [junk, missing] {
            let error = thumbnail((path.clone(), 64)).unwrap_err();
            assert!(error.starts_with(&path), "{error}");
        }
    }

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
    fn listing_keeps_only_png_files_in_order() {
        let dir = TempDir::new("image_resize-test").unwrap();
        for name in ["b.PNG", "a.png", "notes.txt"] {
            fs::write(dir.path().join(name), b"").unwrap();
        }
        fs::create_dir(dir.path().join("sub.png")).unwrap();
        let names: Vec<String> = list_pngs(dir.path())
            .unwrap()
            .iter()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a.png", "b.PNG"]);
        assert!(
            list_pngs(&dir.path().join("sub.png")).is_err(),
            "no PNG in an empty directory"
        );
    }

    #[test]
    fn the_temp_dir_is_removed_on_drop() {
        let dir = TempDir::new("image_resize-test").unwrap();
        let path = dir.path().to_path_buf();
        fs::write(path.join("file"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_thread_pool_returns_the_serial_outputs_in_input_order() {
        let dir = TempDir::new("image_resize-test").unwrap();
        let mut jobs: Vec<Job> = (0..6)
            .map(|i| {
                let image = GrayImage::from_fn(40 + 10 * i, 30, |x, y| Luma([(x * y + i) as u8]));
                (write_png(dir.path(), &format!("{i}.png"), &image), 16)
            })
            .collect();
        jobs.push((dir.path().join("missing.png").display().to_string(), 16));
        let serial: Vec<Thumbnail> = jobs.iter().cloned().map(thumbnail).collect();
        let pool = ThreadPool::new(2).unwrap();
        let parallel = gather(
            pool.map(thumbnail, jobs.clone()).chunksize(1),
            &jobs,
            ProgressBar::hidden(),
        );
        assert!(mismatches(&serial, &parallel).is_empty());
        assert!(parallel[6].is_err() && parallel[..6].iter().all(Result::is_ok));
    }

    #[test]
    fn mismatches_name_every_differing_or_missing_item() {
        let a: Vec<Thumbnail> = vec![Ok(vec![1]), Ok(vec![2]), Err("x".into())];
        let b: Vec<Thumbnail> = vec![Ok(vec![1]), Ok(vec![3]), Err("x".into()), Ok(vec![4])];
        assert_eq!(mismatches(&a, &a), Vec::<usize>::new());
        assert_eq!(mismatches(&a, &b), [1, 3]);
        assert_eq!(mismatches(&b, &a), [1, 3]);
    }

    #[test]
    fn efficiency_counts_cores_in_use() {
        assert_eq!(efficiency(1.8, 2, 2), Some(0.9));
        assert_eq!(
            efficiency(1.8, 4, 2),
            Some(0.9),
            "extra workers add no cores"
        );
        assert_eq!(efficiency(1.0, 1, 2), None);
    }

    #[test]
    fn options_parse_and_conflict() {
        Args::command().debug_assert();
        let args = Args::try_parse_from(["image_resize", "--count", "12", "--size", "32"]).unwrap();
        assert_eq!(
            (args.count, args.size, args.dir, args.workers),
            (12, 32, None, None)
        );
        assert!(Args::try_parse_from(["image_resize", "--dir", "x", "--count", "3"]).is_err());
        assert!(Args::try_parse_from(["image_resize", "--size", "0"]).is_err());
    }
}
