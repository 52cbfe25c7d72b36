//! Fetching a hundred days of air-temperature readings from a weather API that is slow,
//! rate-limited and flaky: I/O-bound work, where threads pay far beyond the number of cores,
//! as long as the client is polite.
//!
//! The case comes from "Speed Up Your Data Processing: Parallel and Asynchronous Programming
//! in Data Science" (Chin Hwee Ong, PyData Global 2020): one request per day for the last 100
//! days to the Data.gov.sg air-temperature API, each wrapped in `@retry` (1 s doubling to
//! 10 s). A list comprehension took 977.88 s; a `ThreadPoolExecutor` with 40 threads,
//! `submit` and `as_completed` took 46.83 s, 20.9x faster.
//!
//! Without `--url`, an embedded loopback mock of that endpoint serves (no network needed),
//! misbehaving as public APIs do: 60 ms per request, HTTP 429 with `Retry-After: 1` beyond 10
//! concurrent requests, and on every other request for some days HTTP 503 with an HTTP-date
//! `Retry-After`, a dropped connection, or truncated JSON. The client rides it out:
//!
//! * every request has a `--timeout` (default 10 s), the run an optional overall `--deadline`;
//! * transient failures (429, 5xx, dropped connections, garbled bodies) are retried with
//!   exponential backoff and full jitter, 1 s doubling up to `--max-backoff`, at most
//!   `--max-attempts` tries, and never sooner than the server's `Retry-After`;
//! * at most `--max-in-flight` requests run at once; an AIMD limiter halves that on HTTP 429
//!   and grows it back one by one as requests succeed;
//! * the last day is fetched first as a probe: an unreachable API stops the run there, a bad
//!   day is just that day's failure;
//! * the planner pilots single attempts (no retries) to pick the thread count; days are then
//!   submitted to a thread pool and taken `as_completed`, progress advancing on completion;
//! * failed days are listed one per line; the exit status is non-zero if any day failed;
//! * `--compare-serial` fetches every day again serially, reports the speedup and lists the
//!   days whose outcomes differ, without failing because of them.
//!
//! ```sh
//! cargo run --release --example weather_fetch
//! cargo run --release --example weather_fetch -- --compare-serial --max-in-flight 8
//! cargo run --release --example weather_fetch -- --url https://api.data.gov.sg --days 30
//! ```

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use jiff::ToSpan;
use jiff::civil::Date;
use parexec::{Planner, ThreadPool, as_completed};

#[path = "support/flaky_api.rs"]
mod flaky_api;
#[path = "support/limiter.rs"]
mod limiter;
#[path = "support/plot.rs"]
mod plot;
#[path = "support/progress.rs"]
mod progress;
#[path = "support/retry.rs"]
mod retry;
#[path = "support/weather_client.rs"]
mod weather_client;

use weather_client::{Api, DayOutcome, DayReading, FetchError, Fetcher, print_summary};

/// Threads in the write-up's `ThreadPoolExecutor`: the most the planner may pick.
const WRITE_UP_THREADS: usize = 40;
/// The write-up's first backoff; each retry doubles the ceiling up to --max-backoff.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Errors of the pipeline; `Send + Sync` because tiny_http reports its own errors that way.
type BoxError = Box<dyn Error + Send + Sync>;

/// Fetch daily air-temperature readings in parallel from a slow, rate-limited, flaky API.
#[derive(Parser, Debug)]
struct Args {
    /// Base URL of a real API, e.g. https://api.data.gov.sg (the endpoint path
    /// /v1/environment/air-temperature is appended); without it, an embedded flaky mock serves.
    #[arg(long, value_name = "BASE", value_parser = weather_client::parse_base_url)]
    url: Option<String>,
    /// Days to fetch, ending at the end date.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=3660))]
    days: u32,
    /// Last day to fetch.
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2020-11-11")]
    end_date: Date,
    /// Threads for the run [default: the planner's choice, at most 40 and --max-in-flight].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: Option<u32>,
    /// Most requests in flight at once; halved on HTTP 429, grown back on success (AIMD).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=256))]
    max_in_flight: u32,
    /// Tries per day, the first included.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// Longest backoff between tries, in seconds (a server's Retry-After may ask for more).
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = retry::seconds)]
    max_backoff: Duration,
    /// Timeout of each request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = retry::seconds)]
    timeout: Duration,
    /// Overall time limit, in seconds: days not fetched by then fail.
    #[arg(long, value_name = "SECONDS", value_parser = retry::seconds)]
    deadline: Option<Duration>,
    /// Also fetch every day serially; report the speedup and any day whose results differ.
    #[arg(long)]
    compare_serial: bool,
    /// Draw the plan's speedup curve to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// Latency of the mock API per request, in milliseconds.
    #[arg(long, default_value_t = 60, conflicts_with = "url",
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    latency_ms: u64,
    /// Concurrent requests the mock API serves before answering HTTP 429.
    #[arg(long, default_value_t = 10, conflicts_with = "url")]
    mock_limit: usize,
}

/// The `days` days up to and including `end`, oldest first.
fn days_ending(end: Date, days: u32) -> Result<Vec<Date>, jiff::Error> {
    (0..i64::from(days))
        .rev()
        .map(|back| end.checked_sub(back.days()))
        .collect()
}

/// One task per day on a pool of `workers` threads, results taken as they complete, as in
/// the write-up; returned in date order.
fn fetch_all(
    fetcher: &Arc<Fetcher>,
    dates: &[Date],
    workers: usize,
) -> Result<Vec<DayOutcome>, BoxError> {
    let bar = progress::bar(Some(dates.len() as u64), "fetching", "days");
    let pool = ThreadPool::builder()
        .workers(workers)
        .thread_name("fetch")
        .build()?;
    let futures: Vec<_> = dates
        .iter()
        .map(|&date| {
            let fetcher = Arc::clone(fetcher);
            pool.submit(move || (date, fetcher.fetch_day(date)))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(dates.len());
    for done in as_completed(futures).progress_with(bar.clone()) {
        outcomes.push(done.result()?);
    }
    pool.shutdown();
    bar.finish_and_clear();
    outcomes.sort_by_key(|(date, _)| *date);
    Ok(outcomes)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    match run(&args) {
        Ok(0) => {
            println!("done in {:.1?}", started.elapsed());
            ExitCode::SUCCESS
        }
        Ok(failed) => {
            eprintln!("weather_fetch: {failed} of {} days failed", args.days);
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("weather_fetch: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Fetches every day and returns how many failed.
fn run(args: &Args) -> Result<usize, BoxError> {
    let deadline = args.deadline.map(|limit| Instant::now() + limit);
    let dates = days_ending(args.end_date, args.days)?;
    let last = args.end_date;
    // Declared before everything that talks to it, so it stops last, on every exit path.
    let (mock, base) = match &args.url {
        Some(url) => (None, url.clone()),
        None => {
            let behaviour = flaky_api::Behaviour::data_gov_like(
                Duration::from_millis(args.latency_ms),
                args.mock_limit,
            );
            let mock = flaky_api::FlakyApi::start(behaviour)?;
            let base = mock.base_url.clone();
            (Some(mock), base)
        }
    };
    println!(
        "fetching {} days, {} to {last}, from {base}{}",
        dates.len(),
        dates[0],
        weather_client::ENDPOINT_PATH
    );
    let backoff = retry::Backoff {
        base: FIRST_BACKOFF,
        cap: args.max_backoff,
        max_attempts: args.max_attempts,
    };
    let api = Api::new(&base, args.timeout);
    let fetcher = Arc::new(Fetcher::new(
        api,
        backoff,
        args.max_in_flight as usize,
        deadline,
    ));

    // One day first: an unreachable API stops the run here; a bad day is that day's failure.
    let probe = fetcher.fetch_day(last);
    match &probe {
        Err(error) if error.is_fatal() => {
            return Err(format!("cannot use the API at {base}: {error}").into());
        }
        Err(error) => println!("probe:     {last}: {error} (that day fails; the run goes on)"),
        Ok(day) => println!(
            "probe:     {last}: {} readings, mean {:.2} °C",
            day.readings, day.mean_c
        ),
    }

    // Single attempts: a flaky or hung day costs the pilot one timeout, not a retry cycle.
    // Threads beyond --max-in-flight would only wait for the limiter.
    let most = WRITE_UP_THREADS.min(args.max_in_flight as usize);
    let plan = Planner::new()
        .max_workers(args.workers.map_or(most, |w| w as usize))
        .pilot(&dates, |date| fetcher.try_once(date).is_ok())
        .plan()?;
    println!("\n== plan (from a pilot of single attempts on a sample of the days)\n{plan}\n");
    if let Some(path) = &args.plot {
        plot::write(&plan, path)?;
    }
    let workers = match args.workers {
        Some(workers) => workers as usize,
        None if plan.parallel => plan.workers,
        None => 1,
    };

    fetcher.take_retries();
    let started = Instant::now();
    let mut outcomes = fetch_all(&fetcher, &dates[..dates.len() - 1], workers)?;
    let elapsed = started.elapsed();
    outcomes.push((last, probe));
    println!(
        "fetched:   {} days in {elapsed:.2?} on {workers} threads (submit + as_completed), {} retries; \
         in flight: peak {}, limit now {} of {} after {} halvings on HTTP 429",
        dates.len(),
        fetcher.take_retries(),
        fetcher.limiter.peak_in_flight(),
        fetcher.limiter.limit(),
        args.max_in_flight,
        fetcher.limiter.decreases(),
    );
    if let Some(mock) = &mock {
        let seen = mock.observed();
        println!(
            "mock API:  {} requests; {} x 429, {} x 503, {} dropped, {} malformed; peak {} concurrent; {} retries before Retry-After",
            seen.requests,
            seen.too_many,
            seen.unavailable,
            seen.dropped,
            seen.malformed,
            seen.peak_concurrency,
            seen.early_retries.len()
        );
    }
    if args.compare_serial {
        compare_serial(&fetcher, &outcomes, elapsed);
    }
    Ok(print_summary(&outcomes))
}

/// Fetches every day again on this thread alone, reports the speedup and lists the days
/// whose outcomes differ: a day that failed in one run and not the other is news, not an
/// error.
fn compare_serial(fetcher: &Fetcher, parallel: &[DayOutcome], parallel_time: Duration) {
    let bar = progress::bar(Some(parallel.len() as u64), "serial", "days");
    let started = Instant::now();
    let serial: Vec<DayOutcome> = parallel
        .iter()
        .map(|&(date, _)| {
            let outcome = fetcher.fetch_day(date);
            bar.inc(1);
            (date, outcome)
        })
        .collect();
    let serial_time = started.elapsed();
    bar.finish_and_clear();
    println!(
        "serial:    {} days in {serial_time:.2?}, {} retries; speedup {:.1}x (write-up: 20.9x on 40 threads)",
        serial.len(),
        fetcher.take_retries(),
        serial_time.as_secs_f64() / parallel_time.as_secs_f64(),
    );
    let mut differing = 0;
    for ((date, serial), (_, parallel)) in serial.iter().zip(parallel).filter(|(s, p)| s != p) {
        differing += 1;
        let show = |o: &Result<DayReading, FetchError>| {
            o.as_ref().map_or_else(
                |e| format!("failed ({e})"),
                |d| format!("mean {:.2} °C", d.mean_c),
            )
        };
        println!(
            "differs:   {date}: serial {}, parallel {}",
            show(serial),
            show(parallel)
        );
    }
    println!(
        "compared:  {differing} of {} days differ between the serial and parallel runs",
        serial.len()
    );
}

#[cfg(test)]
#[path = "support/help.rs"]
mod help;
#[cfg(test)]
#[path = "weather_fetch/tests.rs"]
mod tests;
