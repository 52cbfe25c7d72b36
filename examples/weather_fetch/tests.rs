//! The client against the in-process flaky server of examples/support/flaky_api.rs.

use clap::CommandFactory;
use flaky_api::{Behaviour, FlakyApi};

use super::*;

fn date(text: &str) -> Date {
    text.parse().unwrap()
}

fn fetcher(
    api: &FlakyApi,
    max_attempts: u32,
    max_in_flight: usize,
    timeout: Duration,
) -> Arc<Fetcher> {
    let backoff = retry::Backoff {
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
        max_attempts,
    };
    Arc::new(Fetcher::new(
        Api::new(&api.base_url, timeout),
        backoff,
        max_in_flight,
        None,
    ))
}

/// A run against `api` ending on 2020-10-10, with two quick attempts per day.
fn args(api: &FlakyApi, list: &[&str]) -> Args {
    let base = [
        "weather_fetch",
        "--url",
        &api.base_url,
        "--end-date",
        "2020-10-10",
        "--timeout",
        "5",
        "--max-attempts",
        "2",
        "--max-backoff",
        "0.05",
    ];
    Args::try_parse_from(base.iter().chain(list)).unwrap()
}

#[test]
fn every_day_is_fetched_from_a_flaky_rate_limited_server_within_the_limits() {
    let api = FlakyApi::start(Behaviour {
        concurrency_limit: Some(3),
        latency: Duration::from_millis(20),
        malformed_once: vec![date("2020-10-05")],
        ..Behaviour::data_gov_like(Duration::ZERO, 3)
    })
    .unwrap();
    let dates = days_ending(date("2020-10-10"), 30).unwrap();
    let fetcher = fetcher(&api, 20, 6, Duration::from_secs(5));
    let outcomes = fetch_all(&fetcher, &dates, 12).unwrap();
    let failed: Vec<_> = outcomes.iter().filter(|(_, o)| o.is_err()).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let seen = api.observed();
    assert!(
        seen.too_many > 0 && seen.unavailable > 0 && seen.dropped > 0 && seen.malformed > 0,
        "{seen:?}"
    );
    assert!(
        seen.peak_concurrency <= 6,
        "the limiter kept in flight within --max-in-flight: {seen:?}"
    );
    assert!(fetcher.limiter.decreases() > 0, "HTTP 429 halved the limit");
    assert_eq!(
        seen.early_retries,
        [],
        "every Retry-After, in seconds or as a date, was honoured"
    );
}

#[test]
fn requests_in_flight_never_exceed_max_in_flight_whatever_the_threads() {
    let api = FlakyApi::start(Behaviour {
        latency: Duration::from_millis(30),
        max_requests: 1_000,
        ..Behaviour::default()
    })
    .unwrap();
    let dates = days_ending(date("2020-10-10"), 40).unwrap();
    let fetcher = fetcher(&api, 3, 4, Duration::from_secs(5));
    let outcomes = fetch_all(&fetcher, &dates, 16).unwrap();
    assert!(outcomes.iter().all(|(_, o)| o.is_ok()));
    let peak = api.observed().peak_concurrency;
    assert!(
        (1..=4).contains(&peak),
        "16 threads, at most 4 requests at the server: {peak}"
    );
}

#[test]
fn a_bad_day_fails_alone_even_as_the_probe() {
    let api = FlakyApi::start(Behaviour {
        malformed_always: vec![date("2020-10-10")],
        empty: vec![date("2020-10-08")],
        max_requests: 1_000,
        ..Behaviour::default()
    })
    .unwrap();
    let failed = run(&args(&api, &["--days", "5"])).unwrap();
    assert_eq!(failed, 2, "the malformed probe day and the empty day");
    let fetcher = fetcher(&api, 2, 4, Duration::from_secs(5));
    assert!(matches!(
        fetcher.fetch_day(date("2020-10-10")),
        Err(FetchError::Body(_))
    ));
    assert_eq!(
        fetcher.fetch_day(date("2020-10-08")),
        Err(FetchError::NoReadings)
    );
}

#[test]
fn an_unreachable_api_stops_the_run_at_the_probe() {
    let base = FlakyApi::start(Behaviour::default())
        .unwrap()
        .base_url
        .clone();
    let list = [
        "weather_fetch",
        "--url",
        &base,
        "--days",
        "3",
        "--max-attempts",
        "1",
    ];
    let error = run(&Args::try_parse_from(list).unwrap())
        .unwrap_err()
        .to_string();
    assert!(error.contains("cannot use the API"), "{error}");
}

#[test]
fn a_hung_day_times_out_alone() {
    let api = FlakyApi::start(Behaviour {
        slow: vec![(date("2020-10-09"), Duration::from_secs(4))],
        max_requests: 100,
        ..Behaviour::default()
    })
    .unwrap();
    let fetcher = fetcher(&api, 1, 4, Duration::from_secs(1));
    let error = fetcher.fetch_day(date("2020-10-09")).unwrap_err();
    assert!(
        matches!(&error, FetchError::Unreachable(why) if why.contains("timeout") || why.contains("timed out")),
        "{error:?}"
    );
    assert!(fetcher.fetch_day(date("2020-10-10")).is_ok());
}

#[test]
fn past_the_deadline_no_request_is_made() {
    let api = FlakyApi::start(Behaviour {
        max_requests: 10,
        ..Behaviour::default()
    })
    .unwrap();
    let backoff = retry::Backoff {
        base: Duration::ZERO,
        cap: Duration::ZERO,
        max_attempts: 3,
    };
    let api_client = Api::new(&api.base_url, Duration::from_secs(1));
    // A limiter with no room left, and a deadline already passed.
    let fetcher = Fetcher::new(api_client, backoff, 1, Some(Instant::now()));
    let _busy = fetcher.limiter.acquire(None).unwrap();
    assert_eq!(
        fetcher.fetch_day(date("2020-10-10")),
        Err(FetchError::Deadline)
    );
    assert_eq!(api.observed().requests, 0);
}

#[test]
fn the_pilots_single_attempt_makes_one_request() {
    let api = FlakyApi::start(Behaviour {
        unavailable_every: Some(1),
        retry_after: Duration::from_secs(1),
        max_requests: 10,
        ..Behaviour::default()
    })
    .unwrap();
    let fetcher = fetcher(&api, 5, 4, Duration::from_secs(5));
    let outcome = fetcher.api.fetch_once(date("2020-10-10"));
    assert!(
        matches!(
            outcome,
            Err(FetchError::Status {
                status: 503,
                retry_after: Some(_)
            })
        ),
        "{outcome:?}"
    );
    assert_eq!(api.observed().requests, 1);
}

#[test]
fn comparing_with_a_serial_run_is_never_fatal() {
    let api = FlakyApi::start(Behaviour {
        malformed_once: vec![date("2020-10-09")],
        max_requests: 1_000,
        ..Behaviour::default()
    })
    .unwrap();
    // Each run meets the malformed answer once and retries it; the comparison reports the
    // days that differ (none here) and never fails the run.
    let failed = run(&args(&api, &["--days", "4", "--compare-serial"])).unwrap();
    assert_eq!(failed, 0);
}

#[test]
fn days_end_at_the_end_date_across_a_leap_day() {
    let days = days_ending(date("2020-03-01"), 3).unwrap();
    let texts: Vec<String> = days.iter().map(Date::to_string).collect();
    assert_eq!(texts, ["2020-02-28", "2020-02-29", "2020-03-01"]);
    assert!("2021-02-29".parse::<Date>().is_err());
}

#[test]
fn help_lists_every_option() {
    crate::help::assert_lists(
        Args::command(),
        &[
            "--url",
            "--days",
            "--end-date",
            "--workers",
            "--max-in-flight",
            "--max-attempts",
            "--max-backoff",
            "--timeout",
            "--deadline",
            "--compare-serial",
            "--latency-ms",
            "--mock-limit",
        ],
    );
}
