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
    /// Whether a supervisor thread serves this slot (counted in `live`).
    pub(super) supervised: bool,
}

pub(super) struct State {
    pub(super) queue: VecDeque<Task>,
    pub(super) slots: Vec<Slot>,
    /// The slots in use are `0..target`; those past it finish their tasks and retire.
    pub(super) target: usize,
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
            slots: (0..workers)
                .map(|_| Slot {
                    supervised: true,
                    ..Slot::default()
                })
                .collect(),
            target: workers,
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
        slot < self.target
            && s.pid.is_some()
            && s.in_flight.len() < self.window()
            && max_tasks.is_none_or(|max| s.dispatched < max)
    }

    /// A worker with room and no task in flight.
    pub(super) fn idle_worker(&self, max_tasks: Option<u64>) -> Option<usize> {
        (0..self.slots.len())
            .find(|&slot| self.slots[slot].in_flight.is_empty() && self.has_room(slot, max_tasks))
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
mod test;
