//! An AIMD concurrency limiter, as TCP's congestion control: requests in flight are capped
//! by a limit that grows by one per limit's worth of successes (additive increase) and
//! halves when the server says it is overloaded (multiplicative decrease). A burst of
//! overload answers to requests sent at the same limit halves it once, not once per answer:
//! each permit remembers the epoch it was taken in, and only an answer from the current
//! epoch starts a new one.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// How a request ended, as the limiter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Answered normally: the server keeps up.
    Success,
    /// Told to slow down (HTTP 429).
    Overloaded,
    /// Anything else: says nothing about the server's capacity.
    Neutral,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    epoch: u64,
    peak_in_flight: usize,
    decreases: u32,
}

/// Caps the requests in flight at an adaptive limit between 1 and `max`.
#[derive(Debug)]
pub struct Limiter {
    max: usize,
    state: Mutex<State>,
    changed: Condvar,
}

/// The right to have one request in flight; give it back with [`Permit::release`].
#[derive(Debug)]
pub struct Permit<'a> {
    limiter: &'a Limiter,
    epoch: u64,
}

impl Limiter {
    /// A limiter starting at `max` (at least 1) in flight.
    pub fn new(max: usize) -> Limiter {
        let max = max.max(1);
        Limiter {
            max,
            state: Mutex::new(State {
                limit: max as f64,
                in_flight: 0,
                epoch: 0,
                peak_in_flight: 0,
                decreases: 0,
            }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for room under the limit; `None` if `deadline` passes first.
    pub fn acquire(&self, deadline: Option<Instant>) -> Option<Permit<'_>> {
        let mut state = self.lock();
        while state.in_flight >= state.limit as usize {
            state = match deadline {
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.checked_duration_since(Instant::now())?;
                    self.changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        state.in_flight += 1;
        state.peak_in_flight = state.peak_in_flight.max(state.in_flight);
        Some(Permit {
            limiter: self,
            epoch: state.epoch,
        })
    }

    /// The current limit, rounded down.
    pub fn limit(&self) -> usize {
        self.lock().limit as usize
    }

    /// The most requests that were ever in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.lock().peak_in_flight
    }

    /// How many times the limit was halved.
    pub fn decreases(&self) -> u32 {
        self.lock().decreases
    }
}

impl Permit<'_> {
    /// Ends the request, adjusting the limit by how it went.
    pub fn release(self, signal: Signal) {
        let limiter = self.limiter;
        let mut state = limiter.lock();
        state.in_flight -= 1;
        match signal {
            Signal::Success => {
                state.limit = (state.limit + 1.0 / state.limit).min(limiter.max as f64);
            }
            Signal::Overloaded if self.epoch == state.epoch => {
                state.limit = (state.limit / 2.0).max(1.0);
                state.epoch += 1;
                state.decreases += 1;
            }
            Signal::Overloaded | Signal::Neutral => {}
        }
        drop(state);
        limiter.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_overload_halves_the_limit_once_and_successes_grow_it_back() {
        let limiter = Limiter::new(8);
        let permits: Vec<Permit> = (0..8).map(|_| limiter.acquire(None).unwrap()).collect();
        for permit in permits {
            permit.release(Signal::Overloaded);
        }
        assert_eq!((limiter.limit(), limiter.decreases()), (4, 1));
        for _ in 0..40 {
            limiter.acquire(None).unwrap().release(Signal::Success);
        }
        assert_eq!(limiter.limit(), 8, "back to the maximum, and no further");
    }

    #[test]
    fn the_limit_never_drops_below_one() {
        let limiter = Limiter::new(2);
        for _ in 0..10 {
            limiter.acquire(None).unwrap().release(Signal::Overloaded);
        }
        assert_eq!(limiter.limit(), 1);
        let permit = limiter.acquire(None).unwrap();
        let soon = Instant::now() + Duration::from_millis(20);
        assert!(
            limiter.acquire(Some(soon)).is_none(),
            "full: waits, then gives up"
        );
        permit.release(Signal::Neutral);
    }

    #[test]
    fn threads_never_exceed_the_limit() {
        let limiter = Limiter::new(3);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let permit = limiter.acquire(None).unwrap();
                        std::thread::yield_now();
                        permit.release(Signal::Success);
                    }
                });
            }
        });
        assert!(limiter.peak_in_flight() <= 3);
    }
}
