//! A loopback stand-in for the Data.gov.sg air-temperature API, as flaky as a real one can
//! be: a fixed latency per request, HTTP 429 with `Retry-After` (seconds) above a concurrency
//! limit, HTTP 503 with `Retry-After` (an HTTP-date) on every other request for some days,
//! dropped connections, malformed JSON, days without readings and days that hang. It
//! listens on 127.0.0.1 only, answers a bounded number of requests, stops by itself when
//! idle, and is stopped and joined when dropped. It records what it saw, so tests can check
//! the client's manners: the peak concurrency, and every retry that came sooner than the
//! `Retry-After` it was given.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use jiff::civil::Date;
use jiff::fmt::rfc2822::DateTimePrinter;
use jiff::{Timestamp, ToSpan};
use serde_json::json;

use super::weather_client::ENDPOINT_PATH;

/// Threads answering requests: more than any client here runs at once, so that the
/// concurrency limit, not the server's size, decides who is turned away.
const HANDLERS: usize = 64;
/// A server nobody has talked to for this long stops.
const IDLE_STOP: Duration = Duration::from_secs(60);
/// The mock reports a reading per station at these hours (the real API every minute). Few
/// enough that a response fits tiny_http's 1 KiB write buffer: tiny_http leaves Nagle's
/// algorithm on, so a longer body waits for the client's delayed ACK, 40 ms per request.
const HOURS: [i64; 4] = [2, 8, 14, 20];
const STATIONS: [&str; 3] = ["S109", "S50", "S107"];

/// How the server misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    pub latency: Duration,
    /// Requests beyond this many at once get HTTP 429 with `Retry-After` in seconds.
    pub concurrency_limit: Option<usize>,
    /// Odd-numbered requests for every day whose day of the year is a multiple of this get
    /// HTTP 503 with `Retry-After` as an HTTP-date.
    pub unavailable_every: Option<i16>,
    /// Odd-numbered requests for every such day have their connection dropped unanswered.
    pub drop_every: Option<i16>,
    /// The wait that `Retry-After` asks for.
    pub retry_after: Duration,
    /// Days whose odd-numbered answers are truncated JSON.
    pub malformed_once: Vec<Date>,
    /// Days that always answer truncated JSON.
    pub malformed_always: Vec<Date>,
    /// Days that always answer valid JSON without readings.
    pub empty: Vec<Date>,
    /// Days that take this long to answer.
    pub slow: Vec<(Date, Duration)>,
    /// Requests answered in all; later ones get HTTP 503 without `Retry-After`.
    pub max_requests: usize,
}

impl Behaviour {
    /// The flaky API the pipeline meets by default, shaped like a real run against a
    /// rate-limited public API.
    pub fn data_gov_like(latency: Duration, concurrency_limit: usize) -> Behaviour {
        Behaviour {
            latency,
            concurrency_limit: Some(concurrency_limit),
            unavailable_every: Some(7),
            drop_every: Some(11),
            retry_after: Duration::from_secs(1),
            malformed_once: vec![Date::constant(2020, 10, 1)],
            max_requests: 100_000,
            ..Behaviour::default()
        }
    }
}

/// What the server saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub requests: usize,
    pub peak_concurrency: usize,
    pub too_many: usize,
    pub unavailable: usize,
    pub dropped: usize,
    pub malformed: usize,
    /// Retries that came before the `Retry-After` they were given: the day and how early.
    pub early_retries: Vec<(Date, Duration)>,
}

struct State {
    behaviour: Behaviour,
    in_flight: AtomicUsize,
    stopping: AtomicBool,
    log: Mutex<Log>,
}

#[derive(Default)]
struct Log {
    observed: Observed,
    /// Requests per day that got past the concurrency limit. The spoilt answers go to the
    /// odd-numbered ones, so every run over the days meets them, and every first retry
    /// succeeds.
    admitted: HashMap<Date, u32>,
    not_before: HashMap<Date, Timestamp>,
    last_request: Option<Instant>,
}

/// The running server; dropping it stops and joins its threads.
pub struct FlakyApi {
    server: Arc<tiny_http::Server>,
    state: Arc<State>,
    handlers: Vec<JoinHandle<()>>,
    pub base_url: String,
}

impl FlakyApi {
    pub fn start(
        behaviour: Behaviour,
    ) -> Result<FlakyApi, Box<dyn std::error::Error + Send + Sync>> {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0")?);
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the server has no IP address")?;
        let state = Arc::new(State {
            behaviour,
            in_flight: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            log: Mutex::new(Log::default()),
        });
        let mut api = FlakyApi {
            server,
            state,
            handlers: Vec::new(),
            base_url: format!("http://{addr}"),
        };
        for i in 0..HANDLERS {
            let (server, state) = (Arc::clone(&api.server), Arc::clone(&api.state));
            // On an error, `api` drops here and stops the handlers started so far.
            api.handlers.push(
                thread::Builder::new()
                    .name(format!("flaky-api-{i}"))
                    .spawn(move || state.serve(&server))?,
            );
        }
        Ok(api)
    }

    /// What the server saw so far.
    pub fn observed(&self) -> Observed {
        self.state.log().observed.clone()
    }
}

impl Drop for FlakyApi {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        for handler in self.handlers.drain(..) {
            // A handler that panicked has already reported it; the others still need joining.
            let _ = handler.join();
        }
    }
}

impl State {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn serve(&self, server: &tiny_http::Server) {
        while !self.stopping.load(Ordering::Acquire) {
            match server.recv_timeout(Duration::from_millis(50)) {
                Ok(Some(request)) => self.answer(request),
                Ok(None) | Err(_) => {
                    let idle = self
                        .log()
                        .last_request
                        .is_some_and(|at| at.elapsed() > IDLE_STOP);
                    if idle {
                        self.stopping.store(true, Ordering::Release);
                    }
                }
            }
        }
    }

    fn answer(&self, request: tiny_http::Request) {
        let concurrent = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        let reply = self.decide(requested_date(request.url()), concurrent);
        // A request leaves the count before its answer goes out: a client that has the answer
        // may send its next request at once, which must not find this one still counted.
        let finished = || self.in_flight.fetch_sub(1, Ordering::AcqRel);
        match reply {
            Reply::Drop => {
                finished();
                drop(request.into_writer());
            }
            Reply::Status(status, retry_after) => {
                let mut response = tiny_http::Response::from_string(r#"{"message":"try later"}"#)
                    .with_status_code(status);
                if let Some(value) = retry_after {
                    response.add_header(header("Retry-After", &value));
                }
                finished();
                // A client that gave up waiting has nothing left to tell.
                let _ = request.respond(response);
            }
            Reply::Body(body, delay) => {
                thread::sleep(self.behaviour.latency + delay);
                finished();
                let _ = request.respond(
                    tiny_http::Response::from_string(body)
                        .with_header(header("Content-Type", "application/json")),
                );
            }
        }
    }

    /// What to answer to a request for `date` with `concurrent` requests in progress.
    fn decide(&self, date: Option<Date>, concurrent: usize) -> Reply {
        let b = &self.behaviour;
        let mut log = self.log();
        let now = Timestamp::now();
        log.last_request = Some(Instant::now());
        let seen = &mut log.observed;
        seen.requests += 1;
        seen.peak_concurrency = seen.peak_concurrency.max(concurrent);
        let Some(date) = date else {
            return Reply::Status(400, None);
        };
        if seen.requests > b.max_requests {
            return Reply::Status(503, None);
        }
        if let Some(&not_before) = log.not_before.get(&date) {
            if let Ok(early) = Duration::try_from(not_before.duration_since(now)) {
                log.observed.early_retries.push((date, early));
            }
        }
        let every = |n: Option<i16>| n.is_some_and(|n| date.day_of_year() % n == 0);
        if b.concurrency_limit.is_some_and(|limit| concurrent > limit) {
            log.observed.too_many += 1;
            let not_before = now.checked_add(b.retry_after).unwrap_or(Timestamp::MAX);
            log.not_before.insert(date, not_before);
            return Reply::Status(429, Some(b.retry_after.as_secs().to_string()));
        }
        let admitted = log.admitted.entry(date).or_insert(0);
        *admitted += 1;
        let odd = *admitted % 2 == 1;
        if every(b.unavailable_every) && odd {
            log.observed.unavailable += 1;
            // An HTTP-date has whole seconds: round up, so the wait is at least the one meant.
            let at = now
                .checked_add((b.retry_after.as_secs() as i64 + 1).seconds())
                .unwrap_or(Timestamp::MAX);
            let at = at
                .checked_sub(at.subsec_nanosecond().nanoseconds())
                .unwrap_or(at);
            log.not_before.insert(date, at);
            let value = DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&at)
                .unwrap_or_default();
            return Reply::Status(503, Some(value));
        }
        if every(b.drop_every) && odd {
            log.observed.dropped += 1;
            return Reply::Drop;
        }
        let malformed =
            b.malformed_always.contains(&date) || (b.malformed_once.contains(&date) && odd);
        let delay = b
            .slow
            .iter()
            .find(|(day, _)| *day == date)
            .map_or(Duration::ZERO, |&(_, d)| d);
        if malformed {
            log.observed.malformed += 1;
            let body = body(date);
            return Reply::Body(body[..body.len() / 2].to_owned(), delay);
        }
        let body = if b.empty.contains(&date) {
            r#"{"items": []}"#.to_owned()
        } else {
            body(date)
        };
        Reply::Body(body, delay)
    }
}

enum Reply {
    Drop,
    Status(u16, Option<String>),
    Body(String, Duration),
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("ASCII name and value")
}

/// The day asked for, if `url` is the endpoint with a valid `date` parameter.
pub fn requested_date(url: &str) -> Option<Date> {
    let (path, query) = url.split_once('?')?;
    if path != ENDPOINT_PATH {
        return None;
    }
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("date="))
        .and_then(|date| date.parse().ok())
}

/// The reading in tenths of a degree: 25.0 °C at night rising to 31.0 °C at 14:00, plus up
/// to ±1.0 °C of noise that depends only on the day, hour and station.
pub fn tenths(date: Date, hour: i64, station: usize) -> i64 {
    let day = i64::from(date.year()) * 400 + i64::from(date.day_of_year());
    let key = (day * 24 + hour) as u64 * STATIONS.len() as u64 + station as u64;
    let afternoon = 12 - (hour - 14).abs().min(12);
    250 + 5 * afternoon + fastrand::Rng::with_seed(key).i64(-10..=10)
}

/// The response body for `date`, shaped like the real API's.
pub fn body(date: Date) -> String {
    let items: Vec<_> = HOURS
        .iter()
        .map(|&hour| {
            let readings: Vec<_> = STATIONS
                .iter()
                .enumerate()
                .map(|(station, id)| json!({"station_id": id, "value": tenths(date, hour, station) as f64 / 10.0}))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_deterministic_small_and_in_range() {
        let day = Date::constant(2020, 11, 11);
        assert_eq!(body(day), body(day));
        assert_ne!(body(day), body(day.tomorrow().unwrap()));
        assert!(body(day).len() <= 800, "fits one write with its headers");
        let all = HOURS
            .iter()
            .flat_map(|&h| (0..STATIONS.len()).map(move |s| tenths(day, h, s)));
        assert!(all.into_iter().all(|t| (240..=320).contains(&t)));
    }

    #[test]
    fn only_the_endpoint_with_a_date_is_routed() {
        let day = Some(Date::constant(2020, 11, 11));
        assert_eq!(
            requested_date(&format!("{ENDPOINT_PATH}?date=2020-11-11")),
            day
        );
        assert_eq!(
            requested_date(&format!("{ENDPOINT_PATH}?x=1&date=2020-11-11")),
            day
        );
        assert_eq!(
            requested_date(&format!("{ENDPOINT_PATH}?date=2020-02-30")),
            None
        );
        assert_eq!(requested_date("/v1/other?date=2020-11-11"), None);
        assert_eq!(requested_date(ENDPOINT_PATH), None);
    }
}
