//! CSV classification: an hourly batch job that runs an expensive classifier on every row of
//! a CSV file, streamed in one pass (read, classify in parallel, write, in input order) with
//! memory bounded whatever the file's size.
//!
//! The pipeline comes from "Make Python Pandas go fast" (Wallaroo Labs): `read_csv`, then a
//! data analysts' black-box classifier applied to each row (CPU-bound, rows independent), then
//! `to_csv`. Serially it managed about 270 rows/s; batching rows into frames of 100 and
//! spreading them over 8 workers of a streaming framework gave about 3.5x. Here the planner
//! pilots the classifier on the first rows, picks threads or processes, the worker count and
//! the chunk size, and applies the rule of thumb "parallelise only when efficiency is at least
//! 80%"; the ordered, lazy `map` then streams every row through with a bounded window.
//!
//! ```sh
//! cargo run --release --example csv_classify                       # 20,000 generated rows
//! cargo run --release --example csv_classify -- --input in.csv --output out.csv
//! cargo run --release --example csv_classify -- --input in.csv --output out.csv \
//!     --encoding latin1 --flexible --skip-bad-rows --compare-serial
//! cargo run --release --example csv_classify -- --bench-rss        # peak memory, 10k..1M rows
//! ```
//!
//! The output has the input's columns plus `class` and `score`, in input order, UTF-8. It is
//! written to a temporary file beside `--output` and renamed over it only when every row is
//! done, so an interrupted or failed run never leaves a torn file; an unwritable `--output` is
//! reported before any work. A header-only input gives a header-only output. A row with the
//! wrong number of fields stops the run with its line number, unless `--flexible` accepts it
//! or `--skip-bad-rows` skips and counts it; bytes that are not UTF-8 stop the run naming the
//! line (`--encoding latin1` reads ISO-8859-1). `--compare-serial` classifies everything a
//! second time serially, reports the speedup and checks the outputs row by row.

use std::error::Error;
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use parexec::{Plan, Planner};

#[path = "support/classifier.rs"]
mod classifier;
#[path = "support/cli.rs"]
mod cli;
#[path = "support/compare.rs"]
mod compare;
#[path = "support/csv_input.rs"]
mod csv_input;
#[path = "support/csv_output.rs"]
mod csv_output;
#[path = "support/output.rs"]
mod output;
#[path = "support/peak_rss.rs"]
mod peak_rss;
#[path = "support/plot.rs"]
mod plot;
#[path = "support/progress.rs"]
mod progress;

use classifier::classify_item;
use csv_input::{CsvInput, CsvOptions, Encoding, Item};
use csv_output::{Sink, drain};

/// The header, if any, and the rows, read lazily from a file or generated.
type Input = (Option<Vec<String>>, Box<dyn Iterator<Item = Item>>);

/// Classify every row of a CSV file in parallel, streaming, as planned by parexec.
#[derive(Debug, Parser)]
struct Options {
    /// CSV file to classify; without it, rows are generated.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Where to write the classified CSV (atomically); without it, the output is discarded.
    #[arg(long)]
    output: Option<PathBuf>,
    /// How many rows to generate when there is no --input.
    #[arg(long, default_value_t = 20_000)]
    rows: usize,
    /// The input has no header row: every row is data, and the output has no header either.
    #[arg(long)]
    no_header: bool,
    /// Accept rows whose number of fields differs from the first row's.
    #[arg(long)]
    flexible: bool,
    /// Skip rows with the wrong number of fields, and count them, instead of stopping.
    #[arg(long)]
    skip_bad_rows: bool,
    /// Text encoding of the input.
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    encoding: Encoding,
    /// Workers of the run, overriding the planner's count and its decision to stay serial.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: Option<u32>,
    /// Executors the planner may choose from.
    #[arg(long, value_enum, default_value_t = cli::ExecutorChoice::Auto)]
    executor: cli::ExecutorChoice,
    /// The least parallel efficiency worth paying for (speedup / workers), in (0, 1].
    #[arg(long, default_value_t = 0.8, value_parser = cli::threshold)]
    threshold: f64,
    /// Also classify every row serially, then report the speedup and check the outputs match.
    #[arg(long)]
    compare_serial: bool,
    /// Draw the plan's speedup curve to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Measure peak memory against rows (10k, 100k, 1M) in child runs, and nothing else.
    #[arg(long, conflicts_with_all = ["input", "output", "compare_serial"])]
    bench_rss: bool,
    /// Print this run's peak memory at the end (used by --bench-rss).
    #[arg(long, hide = true)]
    report_peak_rss: bool,
}

/// Rows the planner pilots; also what is read ahead before the first row is classified.
const PILOT_ROWS: usize = 2_000;
/// Seed of the generated rows.
const SEED: u64 = 0x5eed;
/// Row counts of `--bench-rss`.
const BENCH_ROWS: [usize; 3] = [10_000, 100_000, 1_000_000];

/// The input's header (if any) and its rows, read lazily.
fn open_input(options: &Options) -> Result<Input, Box<dyn Error>> {
    match &options.input {
        Some(path) => {
            let csv_options = CsvOptions {
                has_header: !options.no_header,
                flexible: options.flexible,
                encoding: options.encoding,
            };
            let (rows, header) = CsvInput::open(path, csv_options)?;
            Ok((header, Box::new(rows)))
        }
        None => {
            let (header, rows) = csv_input::generated(options.rows, SEED);
            Ok(((!options.no_header).then_some(header), Box::new(rows)))
        }
    }
}

fn main() -> ExitCode {
    // Worker processes re-run this binary: this turns them into workers, if the plan picks
    // processes, before anything else happens.
    parexec::init();
    let options = Options::parse();
    let outcome = if options.bench_rss {
        bench_rss()
    } else {
        run(&options)
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), Box<dyn Error>> {
    // Before any work: a bad --output path fails now, not after the last row.
    let mut target = options
        .output
        .as_deref()
        .map(output::AtomicFile::create)
        .transpose()?;
    let (header, mut rows) = open_input(options)?;
    let source = options
        .input
        .as_ref()
        .map_or("generated rows".into(), |p| p.display().to_string());
    let written_to: Box<dyn Write + '_> = match &mut target {
        Some(file) => Box::new(io::BufWriter::new(file.file())),
        None => Box::new(io::sink()),
    };
    let mut sink = Sink::new(written_to, options.skip_bad_rows, options.compare_serial);
    if let Some(header) = &header {
        sink.header(header)?;
    }

    let pilot: Vec<Item> = rows.by_ref().take(PILOT_ROWS).collect();
    let (mut plan, mut elapsed) = (None, Duration::ZERO);
    if !pilot.is_empty() {
        let mut planned = Planner::new()
            .threshold(options.threshold)
            .executors(&options.executor.kinds())
            .pilot_fn(&pilot, classify_item)
            .plan()?;
        println!("classifying {source}; plan from a pilot on the first rows:\n\n{planned}\n");
        if let Some(path) = &options.plot {
            plot::write(&planned, path)?;
        }
        cli::override_workers(&mut planned, options.workers.map(|w| w as usize));
        // Timed from here, like the serial comparison: planning is paid once, not per row.
        let started = Instant::now();
        let bar = progress::bar(
            options.input.is_none().then_some(options.rows as u64),
            "classifying",
            "rows",
        );
        drain(
            planned
                .map_fn(classify_item, pilot.into_iter().chain(rows))?
                .progress_with(bar.clone()),
            &mut sink,
        )?;
        bar.finish_and_clear();
        elapsed = started.elapsed();
        plan = Some(planned);
    }
    let (written, skipped) = (sink.written, sink.skipped);
    let fingerprints = sink.fingerprints.take();
    sink.finish()?.flush()?;
    if let Some(file) = target {
        file.commit()?;
    }
    println!(
        "{written} rows classified in {:.2} s ({:.0} rows/s){}",
        elapsed.as_secs_f64(),
        written as f64 / elapsed.as_secs_f64().max(1e-9),
        if skipped > 0 {
            format!(", {skipped} bad rows skipped")
        } else {
            String::new()
        }
    );
    if let Some(path) = &options.output {
        println!("wrote {}", path.display());
    }
    if let (Some(plan), Some(parallel)) = (&plan, fingerprints) {
        compare_serial(options, plan, elapsed, &parallel)?;
    }
    if options.report_peak_rss {
        peak_rss::report_own_peak()?;
    }
    Ok(())
}

/// Classifies the input again on this thread alone, reports the speedup against the planned
/// run, and fails if any row's output differs.
fn compare_serial(
    options: &Options,
    plan: &Plan,
    planned: Duration,
    parallel: &[u64],
) -> Result<(), Box<dyn Error>> {
    let (_, rows) = open_input(options)?;
    let bar = progress::bar(Some(parallel.len() as u64), "serial", "rows");
    let started = Instant::now();
    let mut serial = Vec::with_capacity(parallel.len());
    for done in rows.map(classify_item).filter_map(Result::ok) {
        serial.push(compare::fingerprint(&done));
        bar.inc(1);
    }
    let serial_time = started.elapsed();
    bar.finish_and_clear();
    compare::report_speedup(plan, serial_time, planned);
    compare::check_identical(&serial, parallel, "rows", |i| format!("data row {}", i + 1))?;
    Ok(())
}

/// Peak memory of whole runs on files of 10k to 1M generated rows, each in a fresh process.
fn bench_rss() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let (input, output) = (dir.path().join("in.csv"), dir.path().join("out.csv"));
    peak_rss::table(&BENCH_ROWS, |rows| {
        csv_input::write_generated(&input, rows, SEED)?;
        let args: [OsString; 7] = [
            "--input".into(),
            input.clone().into(),
            "--output".into(),
            output.clone().into(),
            "--executor".into(),
            "threads".into(),
            "--report-peak-rss".into(),
        ];
        Ok((
            std::fs::metadata(&input)?.len(),
            peak_rss::child_peak(&args)?,
        ))
    })
}

#[cfg(test)]
#[path = "support/help.rs"]
mod help;
#[cfg(test)]
#[path = "csv_classify/tests.rs"]
mod tests;
