//! Retrying a request the way a well-behaved client does: exponential backoff with full
//! jitter (a random wait between zero and the exponential ceiling, so that clients that
//! failed together do not retry together), capped, and never sooner than the server's
//! `Retry-After` (given in seconds or as an HTTP-date).

use std::thread;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::fmt::rfc2822::DateTimeParser;

/// When and how often to retry.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Ceiling of the first wait; each retry doubles it.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Tries in all, the first included.
    pub max_attempts: u32,
}

/// What one attempt came to.
pub enum Attempt<T, E> {
    /// Final: a result, or an error not worth retrying.
    Done(Result<T, E>),
    /// Worth another try, after at least `after` if the server said so.
    Retry { error: E, after: Option<Duration> },
}

impl Backoff {
    /// The wait before retry number `retry` (0 for the first): uniform in
    /// `[0, min(cap, base * 2^retry)]`, and at least `retry_after`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2_u32.saturating_pow(retry))
            .min(self.cap);
        let jittered = ceiling.mul_f64(fastrand::f64());
        retry_after.map_or(jittered, |after| after.max(jittered))
    }

    /// Runs `attempt` until it is done, the attempts are used up, or the next wait would end
    /// after `deadline`; returns the last outcome and the number of attempts made.
    pub fn retry<T, E>(
        &self,
        deadline: Option<Instant>,
        mut attempt: impl FnMut() -> Attempt<T, E>,
    ) -> (Result<T, E>, u32) {
        let mut made = 0;
        loop {
            made += 1;
            let (error, after) = match attempt() {
                Attempt::Done(outcome) => return (outcome, made),
                Attempt::Retry { error, after } => (error, after),
            };
            let wait = self.delay(made - 1, after);
            let too_late = deadline.is_some_and(|deadline| Instant::now() + wait > deadline);
            if made >= self.max_attempts || too_late {
                return (Err(error), made);
            }
            thread::sleep(wait);
        }
    }
}

/// The wait a `Retry-After` header asks for at `now`: a number of seconds, or an HTTP-date
/// (a date already past asks for no wait). `None` if the value is neither.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTimeParser::new().parse_timestamp(value).ok()?;
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

/// Parses a duration given in seconds, fractions allowed (`--timeout 2.5`).
pub fn seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("expected a positive number of seconds, got {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(1_000),
        max_attempts: 4,
    };

    #[test]
    fn waits_are_jittered_below_a_doubling_capped_ceiling() {
        for retry in 0..8 {
            let ceiling = Duration::from_millis((100 << retry).min(1_000));
            let waits: Vec<Duration> = (0..200).map(|_| POLICY.delay(retry, None)).collect();
            assert!(waits.iter().all(|w| *w <= ceiling), "retry {retry}");
            assert!(
                waits.iter().any(|w| *w < ceiling / 2),
                "jitter spreads the waits"
            );
        }
        assert!(POLICY.delay(u32::MAX, None) <= POLICY.cap);
    }

    #[test]
    fn retry_after_is_a_floor() {
        let after = Some(Duration::from_secs(3));
        assert!((0..100).all(|_| POLICY.delay(0, after) == Duration::from_secs(3)));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        let date = "Mon, 05 Jan 2026 10:00:03 GMT";
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(3)));
        let past = "Mon, 05 Jan 2026 09:00:00 GMT";
        assert_eq!(parse_retry_after(past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn attempts_stop_when_done_or_used_up() {
        let fast = Backoff {
            base: Duration::ZERO,
            ..POLICY
        };
        let mut calls = 0;
        let (outcome, made) = fast.retry(None, || {
            calls += 1;
            if calls < 3 {
                Attempt::Retry {
                    error: calls,
                    after: None,
                }
            } else {
                Attempt::Done(Ok::<_, i32>("fetched"))
            }
        });
        assert_eq!((outcome, made), (Ok("fetched"), 3));
        let (outcome, made) = fast.retry(None, || Attempt::Retry::<(), _> {
            error: "busy",
            after: None,
        });
        assert_eq!((outcome, made), (Err("busy"), 4));
    }

    #[test]
    fn no_wait_runs_past_the_deadline() {
        let soon = Some(Instant::now() + Duration::from_millis(50));
        let after = Some(Duration::from_secs(60));
        let (outcome, made) = POLICY.retry(soon, || Attempt::Retry::<(), _> {
            error: "429",
            after,
        });
        assert_eq!(
            (outcome, made),
            (Err("429"), 1),
            "gives up rather than sleep a minute"
        );
    }

    #[test]
    fn seconds_parse_with_fractions() {
        assert_eq!(seconds("2.5"), Ok(Duration::from_millis(2_500)));
        assert!(seconds("0").is_err() && seconds("-1").is_err() && seconds("x").is_err());
    }
}
