//! The scheduling state of a process pool: which worker holds which tasks, the queue, the
//! in-flight window and the running cost estimates. Pure data: the supervisor and the
//! dispatch code do the I/O around it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::job::Task;
use crate::Stats;

/// A round trip through a worker, which the in-flight window has to cover.
const ROUND_TRIP_NANOS: f64 = 200_000.0;
/// In-flight tasks per worker before the first measurement.
const INITIAL_WINDOW: usize = 8;
const MAX_WINDOW: usize = 64;
/// Per-chunk overhead assumed for `map` before one is measured.
const INITIAL_OVERHEAD_NANOS: f64 = 50_000.0;
#[derive(Default)]
pub(super) struct Slot {
    /// `Some` while a handshaken worker serves this slot.
    pub(super) pid: Option<u32>,
    /// Tasks written to the worker, oldest (running) first.
    pub(super) in_flight: VecDeque<Task>,
    /// When the oldest in-flight task started (as far as the parent can tell).
    pub(super) front_started: Option<Instant>,
    /// Tasks sent to the current process, for `max_tasks_per_worker`.
    pub(super) dispatched: u64,
}

pub(super) struct State {
    pub(super) queue: VecDeque<Task>,
    pub(super) slots: Vec<Slot>,
    pub(super) stats: Stats,
    pub(super) started: bool,
    pub(super) shutdown: bool,
    /// Supervisors still running; when none is left, nothing can run the queue.
    pub(super) live: usize,
    /// Why the last supervisor gave up, once none is left.
    pub(super) broken: Option<String>,
    /// EWMA of compute time per task.
    pub(super) task_nanos: Option<f64>,
    /// EWMA of transfer time per task (encode, both ways through the socket, decode).
    pub(super) overhead_nanos: f64,
}

impl State {
    /// The state of a pool of `workers` slots; a `lazy` pool starts its workers at the first
    /// task.
    pub(super) fn new(workers: usize, lazy: bool) -> Self {
        State {
            queue: VecDeque::new(),
            slots: (0..workers).map(|_| Slot::default()).collect(),
            stats: Stats::default(),
            started: !lazy,
            shutdown: false,
            live: workers,
            broken: None,
            task_nanos: None,
            overhead_nanos: INITIAL_OVERHEAD_NANOS,
        }
    }

    /// Counts a finished task and folds its times into the stats and into the running means
    /// that size the window and estimate the per-chunk overhead.
    pub(super) fn record(
        &mut self,
        ok: bool,
        compute: Duration,
        queue_wait: Duration,
        transfer: Duration,
    ) {
        let stats = &mut self.stats;
        if ok {
            stats.completed += 1;
        } else {
            stats.failed += 1;
        }
        stats.busy += compute;
        stats.queue_wait += queue_wait;
        stats.transfer += transfer;
        let nanos = compute.as_nanos() as f64;
        self.task_nanos = Some(self.task_nanos.map_or(nanos, |old| 0.8 * old + 0.2 * nanos));
        self.overhead_nanos = 0.8 * self.overhead_nanos + 0.2 * transfer.as_nanos() as f64;
    }

    pub(super) fn window(&self) -> usize {
        self.task_nanos.map_or(INITIAL_WINDOW, |nanos| {
            (1.0 + ROUND_TRIP_NANOS / nanos.max(1.0)).clamp(2.0, MAX_WINDOW as f64) as usize
        })
    }

    pub(super) fn has_room(&self, slot: usize, max_tasks: Option<u64>) -> bool {
        let s = &self.slots[slot];
        s.pid.is_some()
            && s.in_flight.len() < self.window()
            && max_tasks.is_none_or(|max| s.dispatched < max)
    }

    pub(super) fn least_loaded(&self, max_tasks: Option<u64>) -> Option<usize> {
        (0..self.slots.len())
            .filter(|&slot| self.has_room(slot, max_tasks))
            .min_by_key(|&slot| self.slots[slot].in_flight.len())
    }

    /// Records `task` as written to `slot`'s worker; `false` (and the task dropped, which
    /// resolves its future as cancelled) if it was cancelled before it could start.
    pub(super) fn send(
        &mut self,
        slot: usize,
        mut task: Task,
        frames: &mut Vec<Arc<Vec<u8>>>,
    ) -> Option<Task> {
        if !task.started {
            if !task.job.start() {
                self.stats.cancelled += 1;
                return Some(task);
            }
            task.started = true;
        }
        let s = &mut self.slots[slot];
        if s.in_flight.is_empty() {
            s.front_started = Some(Instant::now());
        }
        s.dispatched += 1;
        frames.push(Arc::clone(&task.frame));
        s.in_flight.push_back(task);
        None
    }
}

/// Pops the oldest in-flight task if the reply is for it: a worker answers in the order tasks
/// were written, so any other id breaks the protocol.
pub(super) fn pop_reply(in_flight: &mut VecDeque<Task>, id: u64) -> Option<Task> {
    if in_flight.front()?.id == id {
        in_flight.pop_front()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::future::promise;
    use crate::process::job::Single;

    fn task(id: u64) -> (Task, crate::Future<u32>) {
        let (promise, future) = promise();
        let task = Task {
            id,
            frame: Arc::new(vec![id as u8]),
            job: Box::new(Single(promise)),
            started: false,
            attempts: 0,
            submitted: Instant::now(),
            encode: Duration::ZERO,
        };
        (task, future)
    }

    fn two_live_workers() -> State {
        let mut state = State::new(2, false);
        state.slots[0].pid = Some(10);
        state.slots[1].pid = Some(11);
        state
    }

    #[test]
    fn the_window_covers_a_round_trip_within_bounds() {
        let mut state = State::new(1, false);
        assert_eq!(state.window(), INITIAL_WINDOW);
        state.task_nanos = Some(ROUND_TRIP_NANOS);
        assert_eq!(state.window(), 2);
        state.task_nanos = Some(1.0);
        assert_eq!(state.window(), MAX_WINDOW);
    }

    #[test]
    fn tasks_go_to_the_least_loaded_live_worker_with_room() {
        let mut state = two_live_workers();
        let mut frames = Vec::new();
        let (first, _f1) = task(1);
        assert!(state.send(0, first, &mut frames).is_none());
        assert_eq!(state.least_loaded(None), Some(1));
        state.slots[1].pid = None;
        assert_eq!(state.least_loaded(None), Some(0), "only live workers count");
        assert_eq!(
            state.least_loaded(Some(1)),
            None,
            "max_tasks_per_worker is reached"
        );
        assert_eq!(frames.len(), 1);
    }

    #[test]
    fn a_cancelled_task_is_handed_back_unsent() {
        let mut state = two_live_workers();
        let mut frames = Vec::new();
        let (cancelled, future) = task(1);
        assert!(future.cancel());
        assert!(state.send(0, cancelled, &mut frames).is_some());
        assert!(frames.is_empty() && state.slots[0].in_flight.is_empty());
        assert_eq!(state.stats.cancelled, 1);
    }

    #[test]
    fn only_the_oldest_in_flight_task_takes_a_reply() {
        let mut state = two_live_workers();
        let mut frames = Vec::new();
        let mut futures = Vec::new();
        for id in [1, 2] {
            let (t, future) = task(id);
            futures.push(future);
            assert!(state.send(0, t, &mut frames).is_none());
        }
        let in_flight = &mut state.slots[0].in_flight;
        assert!(pop_reply(in_flight, 2).is_none(), "task 2 has not run yet");
        assert_eq!(pop_reply(in_flight, 1).map(|t| t.id), Some(1));
        assert_eq!(pop_reply(in_flight, 2).map(|t| t.id), Some(2));
    }

    #[test]
    fn recording_counts_and_updates_the_estimates() {
        let mut state = State::new(1, false);
        let ms = Duration::from_millis(1);
        state.record(true, ms, ms, ms);
        state.record(false, ms, ms, ms);
        assert_eq!((state.stats.completed, state.stats.failed), (1, 1));
        assert_eq!(state.stats.busy, 2 * ms);
        assert_eq!(state.task_nanos, Some(1e6));
        let expected = 0.8 * (0.8 * INITIAL_OVERHEAD_NANOS + 0.2 * 1e6) + 0.2 * 1e6;
        assert!((state.overhead_nanos - expected).abs() < 1e-6);
    }
}
