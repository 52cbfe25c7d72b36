//! Core probes: how well this machine's cores add up, measured so that a blip from elsewhere
//! does not count.

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::burn;
use crate::planner::pilot::thread_cpu_time;

/// Spin iterations of one core-efficiency probe, a few milliseconds.
const PROBE_ITERATIONS: u64 = 2_000_000;
/// Core-efficiency probes, and the pause between two: a blip from elsewhere shorter than
/// two pauses spoils at most two probes of five, which the median ignores.
const PROBES: usize = 5;
const PROBE_GAP: Duration = Duration::from_millis(20);

/// One core-efficiency probe: a thread burning alone, then `threads` burning at once, each
/// timed by its own CPU clock.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Probe {
    /// Iterations per CPU second of the thread alone.
    alone_rate: f64,
    /// Iterations per CPU second of each thread burning together with the others (their mean).
    together_rate: f64,
}

/// Burns `PROBE_ITERATIONS` on the calling thread and returns the CPU time it took, or the
/// wall time where the platform has no thread CPU clock.
fn timed_burn() -> Duration {
    let cpu = thread_cpu_time();
    let started = Instant::now();
    black_box(burn(PROBE_ITERATIONS));
    let wall = started.elapsed();
    cpu.zip(thread_cpu_time())
        .map_or(wall, |(before, after)| after.saturating_sub(before))
}

/// One probe, or `None` if the system would not start all `threads` threads (then nothing
/// is compared).
fn probe(threads: usize) -> Option<Probe> {
    let rate = |cpu: Duration| PROBE_ITERATIONS as f64 / cpu.as_secs_f64().max(1e-9);
    let alone = timed_burn();
    let together: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, timed_burn).ok())
            .collect();
        // A probe thread cannot panic: it only burns CPU and reads clocks.
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    (together.len() == threads).then(|| Probe {
        alone_rate: rate(alone),
        together_rate: together.iter().map(|&cpu| rate(cpu)).sum::<f64>() / threads as f64,
    })
}

/// Core efficiency from spaced probes with `threads` threads, summarised by [`efficiency`].
pub(super) fn core_efficiency(threads: usize) -> f64 {
    if threads < 2 {
        return 1.0;
    }
    let mut probes = Vec::with_capacity(PROBES);
    for i in 0..PROBES {
        if i > 0 {
            std::thread::sleep(PROBE_GAP);
        }
        probes.extend(probe(threads));
    }
    efficiency(&probes, threads)
}

/// The median over the probes of the share each thread beyond the first adds, `threads`
/// together against one alone, so one or two probes spoilt by a blip from elsewhere do not
/// count. The rates are per CPU second, which other processes cannot lower: they take time
/// from a thread, not speed. Without probes, cores are taken to add up fully.
fn efficiency(probes: &[Probe], threads: usize) -> f64 {
    median(probes.iter().map(|p| {
        let speedup = threads as f64 * p.together_rate / p.alone_rate;
        ((speedup - 1.0) / (threads.max(2) - 1) as f64).clamp(0.0, 1.0)
    }))
    .unwrap_or(1.0)
}

/// The median (the mean of the middle two for an even count); `None` for no values.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    match values.len() {
        0 => None,
        n if n % 2 == 1 => Some(values[mid]),
        _ => Some((values[mid - 1] + values[mid]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe on 2 threads: `rate` iterations per CPU second together against 100 alone.
    fn probe(rate: f64) -> Probe {
        Probe {
            alone_rate: 100.0,
            together_rate: rate,
        }
    }

    #[test]
    fn a_blip_in_two_probes_of_five_changes_nothing() {
        let quiet = [probe(98.0); 5];
        let mut blip = quiet;
        // Caches thrashed by a process busy during two probes: lower CPU-time rates there
        // (the wall-clock probe this replaced read efficiency 0 when a thread lost its core).
        blip[1] = probe(70.0);
        blip[2] = probe(55.0);
        assert_eq!(efficiency(&blip, 2), efficiency(&quiet, 2));
        assert!((efficiency(&quiet, 2) - 0.96).abs() < 1e-9);
        // Slow cores in every probe do count.
        assert!((efficiency(&[probe(80.0); 5], 2) - 0.6).abs() < 1e-9);
        // No probe ran (threads would not start): nothing is assumed lost.
        assert_eq!(efficiency(&[], 2), 1.0);
    }

    #[test]
    fn medians_take_the_middle() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), Some(2.0));
        assert_eq!(median([4.0, 1.0, 2.0, 3.0].into_iter()), Some(2.5));
        assert_eq!(median(std::iter::empty()), None);
    }
}
