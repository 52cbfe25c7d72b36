//! Core probes: how well this machine's cores add up, and how much of them other processes
//! take, measured so that a blip from elsewhere does not count.

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::burn;
use crate::planner::pilot::thread_cpu_time;

/// Spin iterations of the thread alone in a probe, a few milliseconds.
const ALONE_ITERATIONS: u64 = 2_000_000;
/// Spin iterations of each thread burning together, about 10 ms: several scheduler time
/// slices, so that a process busy on a core gets its share of it within the probe (a probe
/// of one slice under-reads a steady load: the new thread often runs its slice alone).
const TOGETHER_ITERATIONS: u64 = 4 * ALONE_ITERATIONS;
/// Core-efficiency probes, and the pause between two: a blip from elsewhere shorter than
/// two pauses spoils at most two probes of five, which the statistics below ignore.
const PROBES: usize = 5;
const PROBE_GAP: Duration = Duration::from_millis(20);
/// Load from elsewhere below this share of the CPU is noise (kernel threads, timers) and is
/// ignored, so that it neither shows in the report nor moves a decision.
const NOTICEABLE_LOAD: f64 = 0.05;

/// One core-efficiency probe: a thread burning alone, then `threads` burning at once, each
/// timed by the wall clock and by its own CPU clock.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Probe {
    /// Iterations per CPU second of the thread alone.
    alone_rate: f64,
    /// Iterations per CPU second of each thread burning together with the others (their mean).
    together_rate: f64,
    /// Cores' worth of CPU the threads got together: the sum of each one's CPU time over its
    /// wall time. Short of the thread count when other processes took CPU meanwhile.
    obtained: f64,
}

/// What the probes found: how well cores add up, and what other processes took meanwhile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CoreLoad {
    pub(super) core_efficiency: f64,
    pub(super) busy_elsewhere: f64,
    pub(super) free_cores: f64,
}

/// Burns `iterations` on the calling thread: (wall, CPU time), with the wall time standing in
/// for CPU time where the platform has no thread CPU clock.
fn timed_burn(iterations: u64) -> (Duration, Duration) {
    let cpu = thread_cpu_time();
    let started = Instant::now();
    black_box(burn(iterations));
    let wall = started.elapsed();
    let used = cpu
        .zip(thread_cpu_time())
        .map_or(wall, |(before, after)| after.saturating_sub(before));
    (wall, used)
}

/// One probe, or `None` if the system would not start all `threads` threads (then nothing
/// is compared).
fn probe(threads: usize) -> Option<Probe> {
    let rate = |iterations: u64, cpu: Duration| iterations as f64 / cpu.as_secs_f64().max(1e-9);
    let (_, alone) = timed_burn(ALONE_ITERATIONS);
    let together: Vec<(Duration, Duration)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .filter_map(|_| {
                std::thread::Builder::new()
                    .spawn_scoped(s, || timed_burn(TOGETHER_ITERATIONS))
                    .ok()
            })
            .collect();
        // A probe thread cannot panic: it only burns CPU and reads clocks.
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    (together.len() == threads).then(|| Probe {
        alone_rate: rate(ALONE_ITERATIONS, alone),
        together_rate: together
            .iter()
            .map(|&(_, cpu)| rate(TOGETHER_ITERATIONS, cpu))
            .sum::<f64>()
            / threads as f64,
        obtained: together
            .iter()
            .map(|&(wall, cpu)| (cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)).min(1.0))
            .sum(),
    })
}

/// Spaced probes with `threads` threads, summarised by [`summarise`].
pub(super) fn core_load(threads: usize, usable: usize, quota: Option<f64>) -> CoreLoad {
    let mut probes = Vec::with_capacity(PROBES);
    for i in 0..PROBES {
        if i > 0 {
            std::thread::sleep(PROBE_GAP);
        }
        probes.extend(probe(threads));
    }
    summarise(&probes, threads, usable, quota)
}

/// Robust statistics of the probes, so that a blip from elsewhere does not count.
/// Efficiency is the median over the probes; it compares CPU-time rates, which other
/// processes cannot lower (they take time from a thread, not speed): `threads` together
/// against one alone, as the share each thread beyond the first adds. Load from elsewhere is
/// the CPU the threads did not get of what they could (all of `threads`, or the cgroup quota
/// if lower), at the lower quartile over the probes: a load counts only when it was there in
/// four probes of five, as a steady load is, and not a blip or a load that comes and goes in
/// bursts (which a parallel run barely notices). Without probes, cores are taken to add up
/// fully and to be free.
fn summarise(probes: &[Probe], threads: usize, usable: usize, quota: Option<f64>) -> CoreLoad {
    let limit = quota.map_or(usable as f64, |q| q.min(usable as f64));
    let expected = quota.map_or(threads as f64, |q| q.min(threads as f64));
    let core_efficiency = if threads < 2 {
        1.0
    } else {
        quantile(
            0.5,
            probes.iter().map(|p| {
                let speedup = threads as f64 * p.together_rate / p.alone_rate;
                ((speedup - 1.0) / (threads - 1) as f64).clamp(0.0, 1.0)
            }),
        )
        .unwrap_or(1.0)
    };
    let deficits = probes.iter().map(|p| (expected - p.obtained).max(0.0));
    let taken = quantile(0.25, deficits).unwrap_or(0.0);
    let busy_elsewhere = (taken / limit).clamp(0.0, 1.0);
    if busy_elsewhere < NOTICEABLE_LOAD {
        return CoreLoad {
            core_efficiency,
            busy_elsewhere: 0.0,
            free_cores: limit,
        };
    }
    CoreLoad {
        core_efficiency,
        busy_elsewhere,
        free_cores: limit - taken,
    }
}

/// The value at quantile `q` (0 = lowest, 0.5 = median, 1 = highest) by nearest rank,
/// rounding down; `None` for no values.
fn quantile(q: f64, values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let last = values.len().checked_sub(1)?;
    Some(values[(q.clamp(0.0, 1.0) * last as f64) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe on 2 threads: `rate` iterations per CPU second together against 100 alone,
    /// with the threads getting `obtained` cores.
    fn probe(rate: f64, obtained: f64) -> Probe {
        Probe {
            alone_rate: 100.0,
            together_rate: rate,
            obtained,
        }
    }

    #[test]
    fn a_blip_in_two_probes_of_five_changes_nothing() {
        let quiet = [probe(98.0, 2.0); 5];
        let mut blip = quiet;
        // Another process busy on one core during two probes: the threads get 1.5 cores
        // (and, before rates were measured in CPU time, read as efficiency 0).
        blip[1] = probe(97.0, 1.5);
        blip[2] = probe(60.0, 1.0);
        let calm = summarise(&quiet, 2, 2, None);
        assert_eq!(summarise(&blip, 2, 2, None), calm);
        assert!((calm.core_efficiency - 0.96).abs() < 1e-9, "{calm:?}");
        assert_eq!((calm.busy_elsewhere, calm.free_cores), (0.0, 2.0));
    }

    #[test]
    fn a_steady_load_is_reported_as_free_cores() {
        // Other processes take 0.8 of 2 cores in every probe but one: 40% of the CPU.
        let mut loaded = [probe(99.0, 1.2); 5];
        loaded[3] = probe(99.0, 2.0);
        let load = summarise(&loaded, 2, 2, None);
        assert!((load.busy_elsewhere - 0.4).abs() < 1e-9, "{load:?}");
        assert!((load.free_cores - 1.2).abs() < 1e-9, "{load:?}");
        assert!((load.core_efficiency - 0.98).abs() < 1e-9, "{load:?}");
    }

    #[test]
    fn a_load_in_bursts_is_not_a_steady_load() {
        // A process busy now and then, caught by three probes of five.
        let bursts = [1.5, 2.0, 1.5, 2.0, 1.5].map(|obtained| probe(99.0, obtained));
        let load = summarise(&bursts, 2, 2, None);
        assert_eq!((load.busy_elsewhere, load.free_cores), (0.0, 2.0));
    }

    #[test]
    fn small_loads_and_cgroup_throttling_are_not_load_from_elsewhere() {
        // 2% of the CPU taken elsewhere is noise.
        let noise = summarise(&[probe(100.0, 1.96); 3], 2, 2, None);
        assert_eq!((noise.busy_elsewhere, noise.free_cores), (0.0, 2.0));
        // A quota of 1.5 cores throttles 2 threads to 1.5 cores: that is the limit, not load.
        let throttled = summarise(&[probe(100.0, 1.5); 3], 2, 2, Some(1.5));
        assert_eq!((throttled.busy_elsewhere, throttled.free_cores), (0.0, 1.5));
        // One core: nothing to compare, efficiency 1; a load still counts.
        let single = summarise(&[probe(100.0, 0.5); 3], 1, 1, None);
        assert_eq!(single.core_efficiency, 1.0);
        assert!((single.free_cores - 0.5).abs() < 1e-9);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let five = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(0.5, five.into_iter()), Some(3.0));
        assert_eq!(quantile(0.25, five.into_iter()), Some(2.0));
        assert_eq!(quantile(0.0, five.into_iter()), Some(1.0));
        assert_eq!(quantile(0.5, [4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.0));
        assert_eq!(quantile(0.5, std::iter::empty()), None);
        // No probe ran (threads would not start): nothing is assumed lost.
        let none = summarise(&[], 2, 2, None);
        assert_eq!(
            (none.core_efficiency, none.busy_elsewhere, none.free_cores),
            (1.0, 0.0, 2.0)
        );
    }
}
