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
fn a_submit_goes_straight_only_to_an_idle_live_worker_with_room() {
    let mut state = two_live_workers();
    let mut frames = Vec::new();
    let (first, _f1) = task(1);
    assert!(state.send(0, first, &mut frames).is_none());
    assert_eq!(state.idle_worker(None), Some(1));
    state.slots[1].pid = None;
    assert_eq!(state.idle_worker(None), None, "only live workers count");
    state.slots[1].pid = Some(11);
    state.slots[1].dispatched = 1;
    assert_eq!(
        state.idle_worker(Some(1)),
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
