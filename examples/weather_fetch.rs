//! Fetching a hundred days of air-temperature readings from a weather API: I/O-bound work,
//! where threads pay far beyond the number of cores.
//!
//! The case comes from "Speed Up Your Data Processing: Parallel and Asynchronous Programming
//! in Data Science" (Chin Hwee Ong, PyData Global 2020), "Network I/O Operations": one request
//! per day for the last 100 days to the Data.gov.sg Realtime Weather Readings API
//! (`https://api.data.gov.sg/v1/environment/air-temperature?date=YYYY-MM-DD`, JSON), each call
//! wrapped in `@retry(wait_exponential_multiplier=1000, wait_exponential_max=10000)` and
//! sleeping 1 s. A list comprehension took 977.88 s (about 16.3 min); a
//! `ThreadPoolExecutor` with 40 threads, `submit` and `as_completed` took 46.83 s, 20.9x
//! faster.
//!
//! Here the same pipeline runs against an embedded mock of that endpoint on 127.0.0.1 (no
//! network needed): deterministic JSON shaped like the real API, a fixed latency per request
//! (standing in for the network and the write-up's sleep), and an HTTP 503 on the first
//! attempt at every 7th day, so the client's retry with exponential backoff (the write-up's
//! 1 s..10 s scaled down to 10 ms..100 ms, at most 5 attempts) is exercised. The program
//! fetches one day as a probe (an unusable API stops the run there), pilots the fetch with the
//! planner and prints its plan, measures the serial baseline, runs the days on a thread pool
//! with `submit` + `as_completed`, reports speedup and efficiency per thread and per core
//! against the 80% rule of thumb, and checks that the parallel results equal the serial ones
//! (exit status 1 if not). If the planner decides on serial, the serial run is the result and
//! no pool starts.
//!
//! ```sh
//! cargo run --release --example weather_fetch
//! cargo run --release --example weather_fetch -- --latency-ms 100 --workers 16
//! cargo run --release --example weather_fetch -- --url https://api.data.gov.sg --days 30
//! ```
//!
//! Options:
//!
//! * `--url <BASE>`: fetch from a real API at `BASE` (the endpoint path is appended) instead
//!   of starting the mock;
//! * `--days <N>`: days to fetch, ending at the end date (default 100);
//! * `--end-date <YYYY-MM-DD>`: the last day fetched (default 2020-11-11, fixed so that runs
//!   repeat);
//! * `--workers <N>`: threads for the parallel run, 1 to 64, overriding the plan (default:
//!   the planner's choice, at most 40 as in the write-up);
//! * `--latency-ms <MS>`: the mock's latency per request (default 60).
//!
//! Expected output, on a 2-core machine (timings vary from run to run; progress bars go to
//! stderr and only when it is a terminal):
//!
//! ```text
//! fetching 100 days, 2020-08-04 to 2020-11-11, from http://127.0.0.1:34919/v1/environment/air-temperature
//! mock API: 60 ms per request, HTTP 503 on the first attempt at every 7th day; retry backoff 10 ms doubling to 100 ms, 5 attempts
//! probe:     2020-11-11: 12 readings, mean 28.14 °C
//!
//! == plan (from a pilot on a sample of the days)
//! workload: 100 items, 70.1 ms/item (cv 0.4), 99.1% of the time waiting, largest item 133 ms
//! executor: threads x36, chunksize 1 (≈ 70.1 ms per chunk; overhead 0.03%)
//! predicted speedup: 1w 1.00x | 2w 1.99x | 4w 3.94x* | 8w 7.72x* | 16w 14.8x* | 36w 30.3x*   (* beyond this machine's 2 cores: modelled)
//! limit: uneven items: largest item 1.9% of the work (bound 52.9x); pool start-up 2.81 ms
//! decision: parallel (efficiency 15.13 >= 0.80)
//!
//! serial:    100 days in 7.09s (70.9ms per day), 14 retries, 0 days failed
//! parallel:  100 days in 280.55ms on 36 threads (submit + as_completed), 14 retries, 0 days failed
//! speedup:   25.3x (planner predicted 30.6x); efficiency 0.70 per thread (36 threads), 12.63 per core (2 of 2 cores in use)
//! 80% rule:  12.63 per core >= 0.80: parallelising pays; waiting work scales with threads, not cores
//! write-up:  977.88 s serial vs 46.83 s on 40 threads, 20.9x (0.52 per thread)
//! verified:  the parallel results equal the serial results for all 100 days fetched both ways
//! data:      100 days, 1200 readings, mean of daily means 28.01 °C (range 24.0..32.0 °C); coolest day 2020-10-16 (27.59 °C), warmest 2020-10-07 (28.48 °C)
//! done in 8.1s
//! ```
//!
//! The planner sees the fetch waiting almost all the time and recommends a few dozen threads
//! on 2 cores. When the predicted serial baseline exceeds 10 s (a slow API, a long latency),
//! only the first days are fetched serially, the output says how many, and the baseline is
//! extrapolated to all days; the comparison covers the days fetched both ways.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use parexec::{Planner, ThreadPool, as_completed};
use serde::{Deserialize, Serialize};
use serde_json::json;
use support::SplitMix64;

mod support;

/// The endpoint of the write-up, below the API's base URL.
const ENDPOINT_PATH: &str = "/v1/environment/air-temperature";
/// Threads in the write-up's `ThreadPoolExecutor`.
const WRITE_UP_THREADS: u32 = 40;
/// Tries per day, the first included. The write-up's `@retry` never gives up, which a
/// program that must finish cannot afford.
const MAX_ATTEMPTS: u32 = 5;
/// The write-up's backoff, 1 s doubling up to 10 s, scaled down a hundredfold.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(100);
/// Longest serial baseline worth measuring in full; beyond it a prefix of the days is
/// measured and the rest extrapolated.
const SERIAL_BUDGET: Duration = Duration::from_secs(10);
/// Every this many days, the mock fails the first attempt with a 503.
const FLAKY_EVERY: i64 = 7;
/// The planner never recommends more threads than this for waiting work, so the mock can
/// serve every client thread at once, as the real API would.
const MOCK_HANDLERS: usize = 64;
/// The mock reports a reading per station at these hours; the real API reports every
/// minute. Few enough that a response fits tiny_http's 1 KiB write buffer: tiny_http leaves
/// Nagle's algorithm on, so a longer body goes out as a second segment that waits for the
/// client's delayed ACK, 40 ms more per request.
const MOCK_HOURS: [i64; 4] = [2, 8, 14, 20];
const MOCK_STATIONS: [&str; 3] = ["S109", "S50", "S107"];

/// Errors of the pipeline; `Send + Sync` because tiny_http reports its own errors that way.
type BoxError = Box<dyn Error + Send + Sync>;

/// Fetch daily air-temperature readings serially and on a thread pool, and compare.
///
/// Without --url, an embedded mock of the Data.gov.sg air-temperature API on 127.0.0.1 serves
/// deterministic readings, waiting --latency-ms per request and answering HTTP 503 to the
/// first attempt at every 7th day. The planner pilots a sample of the days; then a serial
/// baseline and a thread-pool run (submit + as_completed) are timed and their results
/// compared (exit status 1 if they differ).
#[derive(Parser, Debug)]
struct Args {
    /// Base URL of a real API, e.g. https://api.data.gov.sg (the endpoint path
    /// /v1/environment/air-temperature is appended); without it, an embedded mock serves.
    #[arg(long, value_name = "BASE", value_parser = parse_base_url)]
    url: Option<String>,
    /// Days to fetch, ending at the end date.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=3660))]
    days: u32,
    /// Last day to fetch.
    #[arg(long, value_name = "YYYY-MM-DD", default_value = "2020-11-11")]
    end_date: Date,
    /// Threads for the parallel run, 1 to 64 [default: the planner's choice, at most 40].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=MOCK_HANDLERS as i64))]
    workers: Option<u32>,
    /// Latency of the mock API per request, in milliseconds.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    latency_ms: u64,
}

fn parse_base_url(url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(format!("expected an http:// or https:// URL, got {url:?}"))
    }
}

/// A day of the proleptic Gregorian calendar, as days since 1970-01-01. Serde because the
/// planner's pilot takes its items as payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Date(i64);

impl Date {
    /// Howard Hinnant's `days_from_civil`: eras of 400 years (146,097 days) whose years
    /// start on 1 March, so the leap day falls at the end of the year.
    fn from_civil(year: i64, month: u32, day: u32) -> Date {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let month_from_march = i64::from((month + 9) % 12);
        let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        Date(era * 146_097 + day_of_era - 719_468)
    }

    /// Howard Hinnant's `civil_from_days`, the inverse of [`Date::from_civil`].
    fn civil(self) -> (i64, u32, u32) {
        let shifted = self.0 + 719_468;
        let era = shifted.div_euclid(146_097);
        let day_of_era = shifted.rem_euclid(146_097);
        let year_of_era =
            (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let month_from_march = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
        let month = ((month_from_march + 2) % 12 + 1) as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        (year, month, day)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (year, month, day) = self.civil();
        write!(f, "{year:04}-{month:02}-{day:02}")
    }
}

impl FromStr for Date {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("expected a date as YYYY-MM-DD, got {text:?}");
        let mut parts = text.split('-');
        let (Some(year), Some(month), Some(day), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        if (year.len(), month.len(), day.len()) != (4, 2, 2) {
            return Err(invalid());
        }
        let year: i64 = year.parse().map_err(|_| invalid())?;
        let month: u32 = month.parse().map_err(|_| invalid())?;
        let day: u32 = day.parse().map_err(|_| invalid())?;
        let date = Date::from_civil(year, month, day);
        // An impossible day such as 02-30 lands on another date and does not come back.
        if (1..=12).contains(&month) && day >= 1 && date.civil() == (year, month, day) {
            Ok(date)
        } else {
            Err(format!("{text:?} is not a day of the calendar"))
        }
    }
}

/// The `days` days up to and including `end`, oldest first.
fn days_ending(end: Date, days: u32) -> Vec<Date> {
    (0..i64::from(days))
        .rev()
        .map(|back| Date(end.0 - back))
        .collect()
}

/// What one day's readings come to.
#[derive(Debug, Clone, PartialEq)]
struct DayReading {
    date: Date,
    readings: usize,
    mean_c: f64,
    min_c: f64,
    max_c: f64,
}

/// The part of the API's response that the summary needs; serde skips the rest.
#[derive(Debug, Deserialize)]
struct ApiResponse {
    items: Vec<ApiItem>,
}

#[derive(Debug, Deserialize)]
struct ApiItem {
    readings: Vec<ApiReading>,
}

#[derive(Debug, Deserialize)]
struct ApiReading {
    value: f64,
}

impl DayReading {
    fn summarise(date: Date, response: &ApiResponse) -> Result<DayReading, FetchError> {
        let values: Vec<f64> = response
            .items
            .iter()
            .flat_map(|item| item.readings.iter().map(|r| r.value))
            .collect();
        if values.is_empty() {
            return Err(FetchError::NoReadings);
        }
        Ok(DayReading {
            date,
            readings: values.len(),
            mean_c: values.iter().sum::<f64>() / values.len() as f64,
            min_c: values.iter().copied().fold(f64::INFINITY, f64::min),
            max_c: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum FetchError {
    /// The server answered with an error status.
    Status(u16),
    /// No answer: connection refused or reset, timeout, name lookup failed.
    Unreachable(String),
    /// The request could not be made at all (a malformed URL, a TLS set-up error).
    Request(String),
    /// The answer was not the JSON expected.
    Body(String),
    NoReadings,
}

impl FetchError {
    /// Worth another attempt: overload and outages pass, a bad request or body does not.
    fn is_transient(&self) -> bool {
        match self {
            FetchError::Status(status) => *status == 429 || (500..=599).contains(status),
            FetchError::Unreachable(_) => true,
            FetchError::Request(_) | FetchError::Body(_) | FetchError::NoReadings => false,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status(status) => write!(f, "the server answered HTTP {status}"),
            FetchError::Unreachable(why) => write!(f, "no answer from the server: {why}"),
            FetchError::Request(why) => write!(f, "cannot send the request: {why}"),
            FetchError::Body(why) => write!(f, "unexpected response: {why}"),
            FetchError::NoReadings => f.write_str("the response holds no readings for the day"),
        }
    }
}

impl Error for FetchError {}

impl From<ureq::Error> for FetchError {
    fn from(error: ureq::Error) -> Self {
        match error {
            ureq::Error::StatusCode(status) => FetchError::Status(status),
            ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled => FetchError::Unreachable(error.to_string()),
            other => FetchError::Request(other.to_string()),
        }
    }
}

/// The wait before retry number `retry` (0 for the first retry): exponential, capped.
fn backoff(retry: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(2_u32.saturating_pow(retry))
        .min(MAX_BACKOFF)
}

/// The HTTP client, shared by every thread.
struct Api {
    agent: ureq::Agent,
    endpoint: String,
    retries: AtomicU32,
}

impl Api {
    fn new(base: &str) -> Api {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(5)))
            .timeout_global(Some(Duration::from_secs(30)))
            // A connection per request, like the write-up's `requests.get`. It also matters
            // to the mock: tiny_http serves each connection on a pooled thread for as long as
            // it stays open, and can leave a new connection queued behind kept-alive ones.
            .max_idle_connections(0)
            .build()
            .into();
        Api {
            agent,
            endpoint: format!("{base}{ENDPOINT_PATH}"),
            retries: AtomicU32::new(0),
        }
    }

    /// Retries since the last call.
    fn take_retries(&self) -> u32 {
        self.retries.swap(0, Ordering::Relaxed)
    }
}

/// Fetches and summarises one day, retrying transient failures with exponential backoff.
fn fetch_day(api: &Api, date: Date) -> Result<DayReading, FetchError> {
    let mut retry = 0;
    loop {
        match fetch_once(api, date) {
            Err(error) if error.is_transient() && retry + 1 < MAX_ATTEMPTS => {
                api.retries.fetch_add(1, Ordering::Relaxed);
                thread::sleep(backoff(retry));
                retry += 1;
            }
            outcome => return outcome,
        }
    }
}

fn fetch_once(api: &Api, date: Date) -> Result<DayReading, FetchError> {
    let mut response = api
        .agent
        .get(&api.endpoint)
        .query("date", date.to_string())
        .call()?;
    let body = response.body_mut().read_to_vec()?;
    let parsed: ApiResponse =
        serde_json::from_slice(&body).map_err(|e| FetchError::Body(e.to_string()))?;
    DayReading::summarise(date, &parsed)
}

/// The mock's reading in tenths of a degree: 25.0 °C at night rising to 31.0 °C at 14:00,
/// plus up to ±1.0 °C of noise that depends only on the day, hour and station.
fn mock_tenths(date: Date, hour: i64, station: usize) -> i64 {
    let afternoon = 12 - (hour - 14).abs().min(12);
    let seed = (date.0 * 24 + hour) as u64 * MOCK_STATIONS.len() as u64 + station as u64;
    // The first output of a generator seeded with the key: a well-mixed hash of it.
    let noise = (SplitMix64(seed).next_u64() % 21) as i64 - 10;
    250 + 5 * afternoon + noise
}

/// The mock's response body for `date`, shaped like the real API's.
fn mock_body(date: Date) -> String {
    let items: Vec<_> = MOCK_HOURS
        .iter()
        .map(|&hour| {
            let readings: Vec<_> = MOCK_STATIONS
                .iter()
                .enumerate()
                .map(|(station, id)| {
                    let celsius = mock_tenths(date, hour, station) as f64 / 10.0;
                    json!({"station_id": id, "value": celsius})
                })
                .collect();
            json!({"timestamp": format!("{date}T{hour:02}:00:00+08:00"), "readings": readings})
        })
        .collect();
    json!({
        "metadata": {"reading_type": "DBT 1M F", "reading_unit": "deg C"},
        "items": items,
        "api_info": {"status": "healthy"},
    })
    .to_string()
}

/// The day asked for, if `url` is the endpoint with a valid `date` parameter.
fn requested_date(url: &str) -> Option<Date> {
    let (path, query) = url.split_once('?')?;
    if path != ENDPOINT_PATH {
        return None;
    }
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("date="))
        .and_then(|date| date.parse().ok())
}

fn is_flaky(date: Date) -> bool {
    date.0.rem_euclid(FLAKY_EVERY) == 0
}

struct MockState {
    latency: Duration,
    /// Requests so far per flaky day. A flaky day fails every odd-numbered request, so each
    /// run over the days (probe, pilot, serial, parallel) sees its first attempt fail and its
    /// retry succeed, whichever runs fetched the day before.
    hits: Mutex<HashMap<Date, u32>>,
    stopping: AtomicBool,
}

impl MockState {
    /// Answers requests until the server is unblocked while stopping.
    fn serve(&self, server: &tiny_http::Server) {
        loop {
            match server.recv() {
                Ok(request) => self.respond(request),
                Err(_) if self.stopping.load(Ordering::Acquire) => break,
                // A failed accept concerns one connection, not the server.
                Err(_) => continue,
            }
        }
    }

    fn respond(&self, request: tiny_http::Request) {
        thread::sleep(self.latency);
        let response = match requested_date(request.url()) {
            None => tiny_http::Response::from_string(format!(
                r#"{{"message":"expected {ENDPOINT_PATH}?date=YYYY-MM-DD"}}"#
            ))
            .with_status_code(400),
            Some(date) if is_flaky(date) && self.count_hit(date) % 2 == 1 => {
                tiny_http::Response::from_string(r#"{"message":"service unavailable"}"#)
                    .with_status_code(503)
            }
            Some(date) => tiny_http::Response::from_string(mock_body(date)),
        };
        let json = "Content-Type: application/json"
            .parse::<tiny_http::Header>()
            .expect("a constant, well-formed header");
        // A client that gave up waiting has nothing left to tell.
        let _ = request.respond(response.with_header(json));
    }

    /// Counts a request for `date` and returns how many there have been, this one included.
    fn count_hit(&self, date: Date) -> u32 {
        let mut hits = self.hits.lock().unwrap_or_else(PoisonError::into_inner);
        let count = hits.entry(date).or_insert(0);
        *count += 1;
        *count
    }
}

/// The mock API on an ephemeral port of 127.0.0.1; dropping it stops and joins its threads.
struct MockServer {
    server: Arc<tiny_http::Server>,
    state: Arc<MockState>,
    handlers: Vec<JoinHandle<()>>,
    base_url: String,
}

impl MockServer {
    fn start(latency: Duration) -> Result<MockServer, BoxError> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0")?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the mock server is not listening on an IP address")?;
        let mut mock = MockServer {
            server,
            state: Arc::new(MockState {
                latency,
                hits: Mutex::new(HashMap::new()),
                stopping: AtomicBool::new(false),
            }),
            handlers: Vec::with_capacity(MOCK_HANDLERS),
            base_url: format!("http://{addr}"),
        };
        for i in 0..MOCK_HANDLERS {
            let (server, state) = (Arc::clone(&mock.server), Arc::clone(&mock.state));
            // On an error, `mock` drops here and stops the handlers started so far.
            let handler = thread::Builder::new()
                .name(format!("mock-api-{i}"))
                .spawn(move || state.serve(&server))?;
            mock.handlers.push(handler);
        }
        Ok(mock)
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        // Each unblock wakes one thread waiting in `recv`, now or when it next calls it.
        for _ in &self.handlers {
            self.server.unblock();
        }
        for handler in self.handlers.drain(..) {
            // A handler that panicked has already reported it; the others still need joining.
            let _ = handler.join();
        }
    }
}

fn progress_bar(days: usize, phase: &'static str) -> Result<ProgressBar, BoxError> {
    // Drawn on stderr, and only when stderr is a terminal, so logs keep just the summaries.
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:40}] {pos}/{len} days {elapsed}")?
        .progress_chars("=> ");
    Ok(ProgressBar::new(days as u64)
        .with_style(style)
        .with_prefix(phase))
}

type DayOutcome = (Date, Result<DayReading, FetchError>);

fn fetch_serially(api: &Api, dates: &[Date]) -> Result<(Vec<DayOutcome>, Duration), BoxError> {
    let bar = progress_bar(dates.len(), "serial")?;
    let started = Instant::now();
    let outcomes = dates
        .iter()
        .map(|&date| {
            let outcome = fetch_day(api, date);
            bar.inc(1);
            (date, outcome)
        })
        .collect();
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    Ok((outcomes, elapsed))
}

/// One task per day, results taken as they complete, as in the write-up. The time includes
/// starting and stopping the pool.
fn fetch_in_parallel(
    api: &Arc<Api>,
    dates: &[Date],
    workers: usize,
) -> Result<(Vec<DayOutcome>, Duration), BoxError> {
    let bar = progress_bar(dates.len(), "threads")?;
    let started = Instant::now();
    let pool = ThreadPool::builder()
        .workers(workers)
        .thread_name("fetch")
        .build()?;
    let futures: Vec<_> = dates
        .iter()
        .map(|&date| {
            let api = Arc::clone(api);
            pool.submit(move || (date, fetch_day(&api, date)))
        })
        .collect();
    let mut outcomes = Vec::with_capacity(dates.len());
    for done in as_completed(futures) {
        outcomes.push(done.result()?);
        bar.inc(1);
    }
    pool.shutdown();
    let elapsed = started.elapsed();
    bar.finish_and_clear();
    outcomes.sort_by_key(|(date, _)| *date);
    Ok((outcomes, elapsed))
}

fn failures(outcomes: &[DayOutcome]) -> usize {
    outcomes.iter().filter(|(_, o)| o.is_err()).count()
}

/// The first few failed days, then the count, mean of the daily means, coolest and warmest days.
fn print_summary(outcomes: &[DayOutcome]) {
    let days: Vec<&DayReading> = outcomes
        .iter()
        .filter_map(|(_, o)| o.as_ref().ok())
        .collect();
    for (date, error) in outcomes
        .iter()
        .filter_map(|(date, outcome)| Some((date, outcome.as_ref().err()?)))
        .take(5)
    {
        println!("failed:    {date}: {error}");
    }
    let (Some(coolest), Some(warmest)) = (
        days.iter().min_by(|a, b| a.mean_c.total_cmp(&b.mean_c)),
        days.iter().max_by(|a, b| a.mean_c.total_cmp(&b.mean_c)),
    ) else {
        return;
    };
    let readings: usize = days.iter().map(|d| d.readings).sum();
    let mean = days.iter().map(|d| d.mean_c).sum::<f64>() / days.len() as f64;
    let low = days.iter().map(|d| d.min_c).fold(f64::INFINITY, f64::min);
    let high = days
        .iter()
        .map(|d| d.max_c)
        .fold(f64::NEG_INFINITY, f64::max);
    println!(
        "data:      {} days, {readings} readings, mean of daily means {mean:.2} °C (range {low:.1}..{high:.1} °C); \
         coolest day {} ({:.2} °C), warmest {} ({:.2} °C)",
        days.len(),
        coolest.date,
        coolest.mean_c,
        warmest.date,
        warmest.mean_c
    );
}

fn run(args: &Args) -> Result<(), BoxError> {
    let dates = days_ending(args.end_date, args.days);
    let (first, last) = (dates[0], args.end_date);
    // Declared before everything that talks to it, so it stops last, on every exit path.
    let (mock, base) = match &args.url {
        Some(url) => (None, url.clone()),
        None => {
            let mock = MockServer::start(Duration::from_millis(args.latency_ms))?;
            let base = mock.base_url.clone();
            (Some(mock), base)
        }
    };
    println!(
        "fetching {} days, {first} to {last}, from {base}{ENDPOINT_PATH}",
        dates.len()
    );
    if mock.is_some() {
        println!(
            "mock API: {} ms per request, HTTP 503 on the first attempt at every {FLAKY_EVERY}th day; \
             retry backoff {} ms doubling to {} ms, {MAX_ATTEMPTS} attempts",
            args.latency_ms,
            FIRST_BACKOFF.as_millis(),
            MAX_BACKOFF.as_millis()
        );
    }
    let api = Arc::new(Api::new(&base));
    // One day first, so that an unusable API fails the run at once, with its reason.
    let probe = fetch_day(&api, last).map_err(|e| format!("cannot fetch {last}: {e}"))?;
    println!(
        "probe:     {last}: {} readings, mean {:.2} °C",
        probe.readings, probe.mean_c
    );

    let mut plan = Planner::new()
        .max_workers(args.workers.unwrap_or(WRITE_UP_THREADS) as usize)
        .pilot(&dates, |date| fetch_day(&api, date).is_ok())
        .plan()?;
    api.take_retries();
    println!("\n== plan (from a pilot on a sample of the days)\n{plan}\n");
    let cores = plan.machine.usable_cores;
    let workers = match args.workers {
        Some(workers) => {
            println!("--workers {workers} overrides the plan");
            Some(workers as usize)
        }
        None => plan.parallel.then_some(plan.workers),
    };

    // A serial decision makes the serial run the whole job, however long it takes.
    let serial_days = if workers.is_none() || plan.serial_time <= SERIAL_BUDGET {
        dates.len()
    } else {
        let share = SERIAL_BUDGET.as_secs_f64() / plan.serial_time.as_secs_f64();
        ((dates.len() as f64 * share).ceil() as usize).clamp(1, dates.len())
    };
    let (serial, serial_elapsed) = fetch_serially(&api, &dates[..serial_days])?;
    let per_day = serial_elapsed / serial_days as u32;
    let serial_total = serial_elapsed.mul_f64(dates.len() as f64 / serial_days as f64);
    println!(
        "serial:    {serial_days} days in {serial_elapsed:.2?} ({per_day:.1?} per day), {} retries, {} days failed",
        api.take_retries(),
        failures(&serial)
    );
    if serial_days < dates.len() {
        println!(
            "           only the first {serial_days} of {} days were fetched serially (the whole \
             baseline would exceed {SERIAL_BUDGET:?}); extrapolated to all days: {serial_total:.2?}",
            dates.len()
        );
    }

    let Some(workers) = workers else {
        println!("the planner says serial: the serial run is the result");
        print_summary(&serial);
        return Ok(());
    };

    let (parallel, parallel_elapsed) = fetch_in_parallel(&api, &dates, workers)?;
    println!(
        "parallel:  {} days in {parallel_elapsed:.2?} on {workers} threads (submit + as_completed), {} retries, {} days failed",
        dates.len(),
        api.take_retries(),
        failures(&parallel)
    );

    plan.record_serial(serial_total);
    let feedback = plan.record(workers, parallel_elapsed)?;
    let speedup = feedback.measured_speedup;
    let per_core = speedup / workers.min(cores) as f64;
    println!(
        "speedup:   {speedup:.1}x (planner predicted {:.1}x); efficiency {:.2} per thread ({workers} threads), \
         {per_core:.2} per core ({} of {cores} cores in use)",
        feedback.predicted_speedup,
        speedup / workers as f64,
        workers.min(cores),
    );
    println!(
        "80% rule:  {per_core:.2} per core {} {:.2}: {}",
        if per_core >= plan.threshold {
            ">="
        } else {
            "<"
        },
        plan.threshold,
        if per_core >= plan.threshold {
            "parallelising pays; waiting work scales with threads, not cores"
        } else {
            "parallelising does not pay here"
        }
    );
    println!(
        "write-up:  977.88 s serial vs 46.83 s on {WRITE_UP_THREADS} threads, 20.9x ({:.2} per thread)",
        20.9 / f64::from(WRITE_UP_THREADS)
    );

    if let Some(((date, serial), (_, parallel))) = serial
        .iter()
        .zip(&parallel)
        .find(|(serial, parallel)| serial != parallel)
    {
        return Err(format!(
            "the parallel run disagrees with the serial run on {date}: serial {serial:?}, parallel {parallel:?}"
        )
        .into());
    }
    println!(
        "verified:  the parallel results equal the serial results for all {serial_days} days fetched both ways"
    );
    print_summary(&parallel);
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let started = Instant::now();
    match run(&args) {
        Ok(()) => {
            println!("done in {:.1?}", started.elapsed());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("weather_fetch: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn civil_dates_match_known_day_numbers() {
        for (text, days) in [
            ("1970-01-01", 0),
            ("1969-12-31", -1),
            ("2000-02-29", 11_016),
            ("1900-03-01", -25_508),
            ("2020-11-11", 18_577),
        ] {
            assert_eq!(date(text), Date(days), "{text}");
            assert_eq!(Date(days).to_string(), text);
        }
    }

    #[test]
    fn civil_conversion_round_trips_across_centuries() {
        for days in (-150_000..150_000).step_by(7) {
            let (year, month, day) = Date(days).civil();
            assert_eq!(Date::from_civil(year, month, day), Date(days));
        }
    }

    #[test]
    fn impossible_or_malformed_dates_are_rejected() {
        for text in [
            "2021-02-29",
            "1900-02-29",
            "2020-13-01",
            "2020-04-31",
            "2020-00-10",
            "2020-1-01",
            "20201111",
            "2020-11-11-01",
            "",
        ] {
            assert!(text.parse::<Date>().is_err(), "{text}");
        }
        assert!("2000-02-29".parse::<Date>().is_ok());
    }

    #[test]
    fn days_end_at_the_end_date_in_order_across_a_leap_day() {
        let days = days_ending(date("2020-03-01"), 3);
        let texts: Vec<String> = days.iter().map(Date::to_string).collect();
        assert_eq!(texts, ["2020-02-28", "2020-02-29", "2020-03-01"]);
        assert_eq!(days_ending(date("2020-11-11"), 100).len(), 100);
    }

    #[test]
    fn backoff_doubles_from_10_ms_up_to_100_ms() {
        let waits: Vec<u128> = (0..6).map(|retry| backoff(retry).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 80, 100, 100]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn only_overload_and_outages_are_retried() {
        assert!(FetchError::Status(503).is_transient());
        assert!(FetchError::Status(429).is_transient());
        assert!(FetchError::Unreachable("reset".into()).is_transient());
        assert!(!FetchError::Status(404).is_transient());
        assert!(!FetchError::Body("eof".into()).is_transient());
        assert!(!FetchError::NoReadings.is_transient());
    }

    #[test]
    fn the_mock_body_is_deterministic_and_summarises_to_its_readings() {
        let day = date("2020-11-11");
        assert_eq!(mock_body(day), mock_body(day));
        assert_ne!(mock_body(day), mock_body(Date(day.0 + 1)));
        let response: ApiResponse = serde_json::from_str(&mock_body(day)).unwrap();
        let reading = DayReading::summarise(day, &response).unwrap();
        assert_eq!(reading.readings, MOCK_HOURS.len() * MOCK_STATIONS.len());
        let tenths: Vec<i64> = MOCK_HOURS
            .iter()
            .flat_map(|&hour| (0..MOCK_STATIONS.len()).map(move |s| mock_tenths(day, hour, s)))
            .collect();
        let mean = tenths.iter().sum::<i64>() as f64 / 10.0 / tenths.len() as f64;
        assert!((reading.mean_c - mean).abs() < 1e-9);
        assert!(
            24.0 <= reading.min_c && reading.max_c <= 32.0,
            "{reading:?}"
        );
    }

    #[test]
    fn a_mock_response_fits_one_write() {
        // With its headers, within tiny_http's 1 KiB write buffer (see `MOCK_HOURS`).
        assert!(mock_body(date("2020-11-11")).len() <= 800);
    }

    #[test]
    fn a_response_without_readings_is_an_error() {
        let empty: ApiResponse = serde_json::from_str(r#"{"items": []}"#).unwrap();
        assert_eq!(
            DayReading::summarise(date("2020-11-11"), &empty),
            Err(FetchError::NoReadings)
        );
    }

    #[test]
    fn the_mock_routes_only_the_endpoint_with_a_date() {
        let day = date("2020-11-11");
        assert_eq!(
            requested_date(&format!("{ENDPOINT_PATH}?date=2020-11-11")),
            Some(day)
        );
        assert_eq!(
            requested_date(&format!("{ENDPOINT_PATH}?x=1&date=2020-11-11")),
            Some(day)
        );
        assert_eq!(
            requested_date(&format!("{ENDPOINT_PATH}?date=2020-02-30")),
            None
        );
        assert_eq!(requested_date("/v1/other?date=2020-11-11"), None);
        assert_eq!(requested_date(ENDPOINT_PATH), None);
    }

    #[test]
    fn flaky_days_succeed_after_one_retry_and_threads_agree_with_serial() {
        let mock = MockServer::start(Duration::ZERO).unwrap();
        let api = Arc::new(Api::new(&mock.base_url));
        let dates = days_ending(date("2020-11-11"), 14);
        assert_eq!(dates.iter().filter(|&&d| is_flaky(d)).count(), 2);

        let serial: Vec<DayOutcome> = dates.iter().map(|&d| (d, fetch_day(&api, d))).collect();
        assert!(
            serial.iter().all(|(_, outcome)| outcome.is_ok()),
            "{serial:?}"
        );
        assert_eq!(api.take_retries(), 2);

        let (parallel, _) = fetch_in_parallel(&api, &dates, 4).unwrap();
        assert_eq!(parallel, serial);
        assert_eq!(
            api.take_retries(),
            2,
            "each run sees the first attempt fail"
        );
    }

    #[test]
    fn a_bad_request_is_not_retried() {
        let mock = MockServer::start(Duration::ZERO).unwrap();
        let mut api = Api::new(&mock.base_url);
        api.endpoint = format!("{}/v1/unknown", mock.base_url);
        assert_eq!(
            fetch_day(&api, date("2020-11-11")),
            Err(FetchError::Status(400))
        );
        assert_eq!(api.take_retries(), 0);
    }
}
