//! The weather pipeline's client for a Data.gov.sg-shaped air-temperature API: one request
//! per day, retried with backoff under an adaptive concurrency limit and an overall deadline.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Deserialize;

use super::limiter::{Limiter, Signal};
use super::retry::{self, Attempt, Backoff};

/// The endpoint, below the API's base URL.
pub const ENDPOINT_PATH: &str = "/v1/environment/air-temperature";

/// What one day's readings come to.
#[derive(Debug, Clone, PartialEq)]
pub struct DayReading {
    pub readings: usize,
    pub mean_c: f64,
    pub min_c: f64,
    pub max_c: f64,
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

/// Why a day could not be fetched.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchError {
    /// The server answered with an error status, maybe saying when to come back.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No answer: connection refused or dropped, timeout, name lookup failed.
    Unreachable(String),
    /// The request could not be made at all (a malformed URL, a TLS set-up error).
    Request(String),
    /// The answer was not the JSON expected (a truncated body, say).
    Body(String),
    /// Valid JSON without a single reading.
    NoReadings,
    /// The overall deadline passed before the day was fetched.
    Deadline,
}

impl FetchError {
    /// Worth another attempt: overload, outages and garbled answers pass; a bad request or
    /// an empty day does not.
    pub fn is_transient(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status == 429 || (500..=599).contains(status),
            FetchError::Unreachable(_) | FetchError::Body(_) => true,
            FetchError::Request(_) | FetchError::NoReadings | FetchError::Deadline => false,
        }
    }

    /// The API itself is unusable, not just this day.
    pub fn is_fatal(&self) -> bool {
        matches!(self, FetchError::Unreachable(_) | FetchError::Request(_))
    }

    fn signal(outcome: &Result<DayReading, FetchError>) -> Signal {
        match outcome {
            Ok(_) | Err(FetchError::NoReadings | FetchError::Body(_)) => Signal::Success,
            Err(FetchError::Status { status: 429, .. }) => Signal::Overloaded,
            Err(_) => Signal::Neutral,
        }
    }
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status { status, .. } => write!(f, "the server answered HTTP {status}"),
            FetchError::Unreachable(why) => write!(f, "no answer from the server: {why}"),
            FetchError::Request(why) => write!(f, "cannot send the request: {why}"),
            FetchError::Body(why) => write!(f, "unexpected response: {why}"),
            FetchError::NoReadings => f.write_str("the response holds no readings for the day"),
            FetchError::Deadline => f.write_str("the overall deadline passed first"),
        }
    }
}

impl From<ureq::Error> for FetchError {
    fn from(error: ureq::Error) -> Self {
        match error {
            ureq::Error::Timeout(_)
            | ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
            | ureq::Error::Protocol(_) => FetchError::Unreachable(error.to_string()),
            other => FetchError::Request(other.to_string()),
        }
    }
}

/// Parses `--url`: an http(s) base URL, without a trailing slash.
pub fn parse_base_url(url: &str) -> Result<String, String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.trim_end_matches('/').to_owned())
    } else {
        Err(format!("expected an http:// or https:// URL, got {url:?}"))
    }
}

/// One HTTP request per call, with a per-request timeout.
pub struct Api {
    agent: ureq::Agent,
    pub endpoint: String,
}

impl Api {
    pub fn new(base: &str, timeout: Duration) -> Api {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            // Error statuses are answers too: their Retry-After matters.
            .http_status_as_error(false)
            // A connection per request, like the write-up's `requests.get`.
            .max_idle_connections(0)
            .build()
            .into();
        Api {
            agent,
            endpoint: format!("{base}{ENDPOINT_PATH}"),
        }
    }

    /// Fetches and summarises `date` with a single request.
    pub fn fetch_once(&self, date: Date) -> Result<DayReading, FetchError> {
        let mut response = self
            .agent
            .get(&self.endpoint)
            .query("date", date.to_string())
            // Said out loud, so that a server drops the connection after the answer, and
            // a connection it drops without answering is seen as dropped at once.
            .header("Connection", "close")
            .call()?;
        let status = response.status().as_u16();
        if status != 200 {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| retry::parse_retry_after(value, Timestamp::now()));
            return Err(FetchError::Status {
                status,
                retry_after,
            });
        }
        let body = response.body_mut().read_to_vec()?;
        let parsed: ApiResponse =
            serde_json::from_slice(&body).map_err(|e| FetchError::Body(e.to_string()))?;
        let values: Vec<f64> = parsed
            .items
            .iter()
            .flat_map(|item| item.readings.iter().map(|r| r.value))
            .collect();
        if values.is_empty() {
            return Err(FetchError::NoReadings);
        }
        Ok(DayReading {
            readings: values.len(),
            mean_c: values.iter().sum::<f64>() / values.len() as f64,
            min_c: values.iter().copied().fold(f64::INFINITY, f64::min),
            max_c: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// A day and how fetching it went.
pub type DayOutcome = (Date, Result<DayReading, FetchError>);

/// Fetches days with retries, shared by every thread of a run.
pub struct Fetcher {
    pub api: Api,
    pub backoff: Backoff,
    pub limiter: Limiter,
    pub deadline: Option<Instant>,
    retries: AtomicU32,
    /// When each day may be asked for again, as the server said in a `Retry-After`.
    not_before: Mutex<HashMap<Date, Instant>>,
}

impl Fetcher {
    pub fn new(
        api: Api,
        backoff: Backoff,
        max_in_flight: usize,
        deadline: Option<Instant>,
    ) -> Fetcher {
        Fetcher {
            api,
            backoff,
            limiter: Limiter::new(max_in_flight),
            deadline,
            retries: AtomicU32::new(0),
            not_before: Mutex::new(HashMap::new()),
        }
    }

    /// One request for `date`, no retry (what a pilot measures), remembering any
    /// `Retry-After` so that later requests for the day honour it too.
    pub fn try_once(&self, date: Date) -> Result<DayReading, FetchError> {
        let outcome = self.api.fetch_once(date);
        if let Err(FetchError::Status {
            retry_after: Some(after),
            ..
        }) = &outcome
        {
            let mut not_before = self
                .not_before
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            not_before.insert(date, Instant::now() + *after);
        }
        outcome
    }

    /// Fetches `date`, retrying what is transient, within the limiter and the deadline.
    pub fn fetch_day(&self, date: Date) -> Result<DayReading, FetchError> {
        let not_before = self
            .not_before
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&date)
            .copied();
        if let Some(wait) = not_before.and_then(|at| at.checked_duration_since(Instant::now())) {
            if self
                .deadline
                .is_some_and(|deadline| Instant::now() + wait > deadline)
            {
                return Err(FetchError::Deadline);
            }
            thread::sleep(wait);
        }
        let (outcome, attempts) = self.backoff.retry(self.deadline, || {
            let Some(permit) = self.limiter.acquire(self.deadline) else {
                return Attempt::Done(Err(FetchError::Deadline));
            };
            let outcome = self.try_once(date);
            permit.release(FetchError::signal(&outcome));
            match outcome {
                Err(error) if error.is_transient() => {
                    let after = match &error {
                        FetchError::Status { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    Attempt::Retry { error, after }
                }
                done => Attempt::Done(done),
            }
        });
        self.retries.fetch_add(attempts - 1, Ordering::Relaxed);
        outcome
    }

    /// Retries since the last call.
    pub fn take_retries(&self) -> u32 {
        self.retries.swap(0, Ordering::Relaxed)
    }
}

/// Failed days one per line, then the count, mean of the daily means, coolest and warmest.
pub fn print_summary(outcomes: &[DayOutcome]) -> usize {
    let mut days = Vec::new();
    let mut failed = 0;
    for (date, outcome) in outcomes {
        match outcome {
            Ok(reading) => days.push((date, reading)),
            Err(error) => {
                failed += 1;
                println!("failed:    {date}: {error}");
            }
        }
    }
    let by_mean =
        |a: &&(&Date, &DayReading), b: &&(&Date, &DayReading)| a.1.mean_c.total_cmp(&b.1.mean_c);
    if let (Some(coolest), Some(warmest)) =
        (days.iter().min_by(by_mean), days.iter().max_by(by_mean))
    {
        let readings: usize = days.iter().map(|(_, d)| d.readings).sum();
        let mean = days.iter().map(|(_, d)| d.mean_c).sum::<f64>() / days.len() as f64;
        let low = days
            .iter()
            .map(|(_, d)| d.min_c)
            .fold(f64::INFINITY, f64::min);
        let high = days
            .iter()
            .map(|(_, d)| d.max_c)
            .fold(f64::NEG_INFINITY, f64::max);
        println!(
            "data:      {} days, {readings} readings, mean of daily means {mean:.2} °C (range {low:.1}..{high:.1} °C); \
             coolest day {} ({:.2} °C), warmest {} ({:.2} °C)",
            days.len(),
            coolest.0,
            coolest.1.mean_c,
            warmest.0,
            warmest.1.mean_c
        );
    }
    failed
}
