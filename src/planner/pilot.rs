//! The pilot: time a representative sample of items serially and summarise it as a
//! [`WorkloadProfile`].
//!
//! # Design
//!
//! Items are visited in a stride permutation (`index = k·s mod n` with `s ≈ 0.618·n` coprime
//! to `n`), so any prefix of the visit order is spread over the whole input. The pilot stops
//! once it has spent [`PILOT_SHARE`] of the estimated total time, within [`PILOT_FLOOR`] and
//! [`PILOT_CAP`] (after at least [`MIN_ITEMS`] items), at [`PILOT_HARD_CAP`] whatever happens,
//! or when every item has run. Items faster than the clocks can resolve well are timed in
//! batches that double until a batch takes [`MIN_BATCH`]; the spread is then estimated from
//! the batch means scaled by the batch size. Each batch records wall time and thread CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`); their ratio separates computing from waiting. On Linux the
//! time the thread spent runnable but waiting for a CPU (`/proc/thread-self/schedstat`) is
//! taken out of the wall time first: that is other load on a shared machine, and counted as
//! waiting it would make CPU-bound work look like work that waits, and get it more threads
//! than cores. Elsewhere (or without schedstat), when the median
//! batch is CPU-bound (at least [`CPU_BOUND_SHARE`] on the CPU), a batch's wall time is capped
//! at its CPU time over that median share: the excess is this thread being descheduled by
//! other load on a shared machine, not the item waiting, and would otherwise pass for I/O and
//! inflate the spread. Argument and
//! result sizes are measured on a few sampled items with a counting postcard writer, and only
//! when a process pool is being considered (its pilot has serde types; a thread-only pilot
//! takes any items).
//!
//! With weights (for example file sizes) the sample gives the cost per unit of weight, and the
//! weights of all items give the total, the spread and the largest item: an outlier that the
//! sample missed still shows.

use std::time::{Duration, Instant};

use self::clocks::RunQueue;
pub(crate) use self::clocks::thread_cpu_time;
use super::model::WorkloadProfile;
use crate::{Error, unwind};

/// Share of the estimated total time the pilot may spend.
const PILOT_SHARE: f64 = 0.02;
/// The pilot may always spend this long.
const PILOT_FLOOR: Duration = Duration::from_millis(10);
/// The pilot stops after this long, once it has [`MIN_ITEMS`] items.
const PILOT_CAP: Duration = Duration::from_millis(200);
/// The pilot never runs longer than this (beyond the item running when it is reached).
const PILOT_HARD_CAP: Duration = Duration::from_secs(1);
/// Items to time at least, when there are that many and the hard cap allows.
const MIN_ITEMS: usize = 8;
/// Shortest batch worth timing on its own.
const MIN_BATCH: Duration = Duration::from_micros(20);
/// Largest batch of fast items.
const MAX_BATCH: usize = 1024;
/// Median CPU share above which a workload counts as CPU-bound for the preemption filter.
const CPU_BOUND_SHARE: f64 = 0.9;
/// Items whose argument and result sizes are measured.
const SIZED_ITEMS: usize = 4;

/// One timed batch of consecutive visits.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// Offset of the batch in the visit order.
    start: usize,
    /// The first item it visited.
    first: usize,
    len: usize,
    wall: Duration,
    cpu: Option<Duration>,
}

/// The encoded size of an item's argument and result (`None` if it panicked), for a pilot
/// that measures payloads.
pub(crate) type PayloadSize<'s, A, R> = &'s dyn Fn(&A, Option<&R>) -> usize;

/// Runs the pilot over `items`; `weights`, if given, has one finite non-negative weight per
/// item. `payload_size`, if given, measures the argument and result sizes.
pub(crate) fn run<A: Clone, R>(
    items: &[A],
    f: impl Fn(A) -> R,
    weights: Option<&[f64]>,
    payload_size: Option<PayloadSize<'_, A, R>>,
) -> Result<WorkloadProfile, Error> {
    let n = items.len();
    if n == 0 {
        return Err(Error::InvalidArgument(
            "the pilot needs at least one item".into(),
        ));
    }
    if let Some(weights) = weights {
        check_weights(weights, n)?;
    }
    let order = stride(n);
    let run_queue = RunQueue::open();
    let started = Instant::now();
    let mut batches: Vec<Batch> = Vec::new();
    let mut payload = (0.0, 0usize);
    let (mut visited, mut batch_len) = (0, 1);
    while visited < n {
        let len = batch_len.min(n - visited);
        let indices = &order[visited..visited + len];
        let args: Vec<A> = indices.iter().map(|&i| items[i].clone()).collect();
        let queued_before = run_queue.delay();
        let cpu_before = thread_cpu_time();
        let wall_before = Instant::now();
        let results: Vec<Option<R>> = args
            .into_iter()
            .map(|a| unwind::catch(|| f(a)).ok())
            .collect();
        let elapsed = wall_before.elapsed();
        let cpu = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        // Time spent runnable but without a CPU is other load, not the item waiting.
        let queued = run_queue
            .delay()
            .zip(queued_before)
            .map_or(Duration::ZERO, |(after, before)| {
                after.saturating_sub(before)
            });
        let wall = elapsed.saturating_sub(queued).max(cpu.unwrap_or_default());
        if let Some(size) = payload_size.filter(|_| payload.1 < SIZED_ITEMS) {
            for (&i, result) in indices.iter().zip(&results).take(SIZED_ITEMS - payload.1) {
                payload.0 += size(&items[i], result.as_ref()) as f64;
                payload.1 += 1;
            }
        }
        drop(results);
        batches.push(Batch {
            start: visited,
            first: indices[0],
            len,
            wall,
            cpu,
        });
        visited += len;
        if elapsed < MIN_BATCH {
            batch_len = (batch_len * 2).min(MAX_BATCH);
        }
        let spent = started.elapsed();
        let estimate = spent.as_secs_f64() / visited as f64 * n as f64;
        let budget = Duration::from_secs_f64(PILOT_SHARE * estimate).clamp(PILOT_FLOOR, PILOT_CAP);
        if spent >= PILOT_HARD_CAP || (visited >= MIN_ITEMS.min(n) && spent >= budget) {
            break;
        }
    }
    let payload_bytes = if payload.1 == 0 {
        0.0
    } else {
        payload.0 / payload.1 as f64
    };
    Ok(summarise(&order, &batches, weights, payload_bytes))
}

fn check_weights(weights: &[f64], n: usize) -> Result<(), Error> {
    if weights.len() != n {
        return Err(Error::InvalidArgument(format!(
            "{} weights for {n} items: give one weight per item",
            weights.len()
        )));
    }
    if let Some(bad) = weights.iter().find(|w| !(w.is_finite() && **w >= 0.0)) {
        return Err(Error::InvalidArgument(format!(
            "weights must be finite and non-negative, got {bad}"
        )));
    }
    if weights.iter().sum::<f64>() <= 0.0 {
        return Err(Error::InvalidArgument(
            "the weights must not all be zero".into(),
        ));
    }
    Ok(())
}

/// A visit order over `0..n` whose every prefix is spread over the whole range.
fn stride(n: usize) -> Vec<usize> {
    let mut step = ((n as f64 * 0.618_033_988_7).round() as usize).max(1);
    while gcd(step, n) != 1 {
        step -= 1;
    }
    (0..n).map(|k| (k * step) % n).collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn summarise(
    order: &[usize],
    batches: &[Batch],
    weights: Option<&[f64]>,
    payload_bytes: f64,
) -> WorkloadProfile {
    let n = order.len();
    let items: usize = batches.iter().map(|b| b.len).sum();
    let walls = filtered_walls(batches);
    let wall: f64 = walls.iter().sum();
    let cpu: Option<f64> = batches.iter().map(|b| b.cpu.map(|c| c.as_secs_f64())).sum();
    // Without a thread CPU clock, assume computing: it never oversubscribes the cores.
    let cpu_share = match cpu {
        Some(cpu) if wall > 0.0 => (cpu / wall).clamp(0.0, 1.0),
        _ => 1.0,
    };
    let per_item = |j: usize| walls[j] / batches[j].len as f64;
    let mean = wall / items as f64;
    let mut profile = WorkloadProfile::uniform(n, Duration::from_secs_f64(mean));
    profile.cpu_share = cpu_share;
    profile.payload_bytes = payload_bytes;
    match weights {
        Some(weights) => {
            let sampled: f64 = batches
                .iter()
                .flat_map(|b| &order[b.start..b.start + b.len])
                .map(|&i| weights[i])
                .sum();
            let total_weight: f64 = weights.iter().sum();
            // With a sample of zero weight, fall back to an even split of the measured mean.
            let per_weight = if sampled > 0.0 {
                wall / sampled
            } else {
                mean * n as f64 / total_weight
            };
            let (heaviest, &max_weight) = weights
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("weights were checked to be non-empty");
            let mean_weight = total_weight / n as f64;
            let variance = weights
                .iter()
                .map(|w| (w - mean_weight).powi(2))
                .sum::<f64>()
                / n as f64;
            profile.mean_item = Duration::from_secs_f64(per_weight * mean_weight);
            profile.largest_item = Duration::from_secs_f64(per_weight * max_weight);
            profile.largest_position = position(heaviest, n);
            profile.cv = variance.sqrt() / mean_weight;
        }
        None => {
            let largest = (0..batches.len())
                .max_by(|&a, &b| per_item(a).total_cmp(&per_item(b)))
                .expect("the pilot times at least one batch");
            profile.largest_item = Duration::from_secs_f64(per_item(largest).max(mean));
            profile.largest_position = if items == n {
                position(batches[largest].first, n)
            } else {
                0.5
            };
            if batches.len() > 1 && mean > 0.0 {
                // A batch of L items has variance sigma^2 / L around the mean.
                let spread: f64 = (0..batches.len())
                    .map(|j| batches[j].len as f64 * (per_item(j) - mean).powi(2))
                    .sum::<f64>()
                    / (batches.len() - 1) as f64;
                profile.cv = spread.sqrt() / mean;
            }
        }
    }
    profile
}

/// Batch wall times in seconds, with preemption removed from CPU-bound work.
fn filtered_walls(batches: &[Batch]) -> Vec<f64> {
    let mut shares: Vec<f64> = batches
        .iter()
        .filter_map(|b| {
            b.cpu
                .map(|c| c.as_secs_f64() / b.wall.as_secs_f64().max(1e-12))
        })
        .collect();
    shares.sort_by(f64::total_cmp);
    let median = shares
        .get(shares.len() / 2)
        .copied()
        .unwrap_or(0.0)
        .min(1.0);
    batches
        .iter()
        .map(|b| {
            let wall = b.wall.as_secs_f64();
            match b.cpu {
                Some(cpu) if median >= CPU_BOUND_SHARE => wall.min(cpu.as_secs_f64() / median),
                _ => wall,
            }
        })
        .collect()
}

fn position(index: usize, n: usize) -> f64 {
    if n <= 1 {
        0.0
    } else {
        index as f64 / (n - 1) as f64
    }
}

/// The [`PayloadSize`] of serde types: what a process pool moves for an item.
pub(crate) fn serde_size<A: serde::Serialize, R: serde::Serialize>(
    argument: &A,
    result: Option<&R>,
) -> usize {
    encoded_len(argument) + result.map_or(0, encoded_len)
}

/// Serialized size of `value` with postcard; 0 if it cannot be serialized (the pool reports
/// that error when it runs the item).
fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    postcard::experimental::serialized_size(value).unwrap_or(0)
}

mod clocks;
#[cfg(test)]
mod test;
