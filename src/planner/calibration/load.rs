//! Load from elsewhere: how much CPU other processes used while calibration ran, from the
//! machine's CPU time (`/proc/stat`) less this process's own (its CPU clock).
//!
//! The whole calibration is one window (some 200 ms), long enough for the 10 ms granularity
//! of `/proc/stat` and for a duty-cycled load to show at about its average; a blip shorter
//! than the window counts only in proportion to its length.

/// Load from elsewhere below this share of the CPU is noise (kernel threads, timers, the
/// granularity of `/proc/stat`) and is ignored, so that it neither shows in the report nor
/// moves a decision.
const NOTICEABLE_LOAD: f64 = 0.05;

/// A reading of the machine's CPU time and this process's, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct CpuSample {
    /// Time all CPUs spent busy: user, system, interrupts, and time stolen by a hypervisor.
    busy: f64,
    /// Busy time plus idle time (including waiting for I/O), over all CPUs.
    total: f64,
    /// CPU time of this process, all its threads.
    own: f64,
}

impl CpuSample {
    /// The current reading, or `None` where the machine's CPU time cannot be read.
    #[cfg(target_os = "linux")]
    pub(super) fn now() -> Option<CpuSample> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let (busy, total) = parse_proc_stat(&stat)?;
        // SAFETY: sysconf only reads a system constant.
        let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec, and CLOCK_PROCESS_CPUTIME_ID is a clock
        // Linux always provides.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        if rc != 0 || ticks_per_second <= 0 {
            return None;
        }
        let tick = 1.0 / ticks_per_second as f64;
        Some(CpuSample {
            busy: busy as f64 * tick,
            total: total as f64 * tick,
            own: ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub(super) fn now() -> Option<CpuSample> {
        None
    }
}

/// Busy and total ticks of all CPUs, from the first line of `/proc/stat`: `cpu user nice
/// system idle iowait irq softirq steal ...` (guest time is already inside user time).
fn parse_proc_stat(stat: &str) -> Option<(u64, u64)> {
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = fields.try_into().ok()?;
    let busy = user + nice + system + irq + softirq + steal;
    Some((busy, busy + idle + iowait))
}

/// What other processes left to this process between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Load {
    /// Share of the CPU other processes used, 0 when under [`NOTICEABLE_LOAD`].
    pub(super) busy_elsewhere: f64,
    /// Cores' worth of CPU left of `limit`.
    pub(super) free_cores: f64,
}

/// The load between `before` and `after`, for a process that may use `limit` cores (its
/// usable cores, or its cgroup quota if lower). Other processes are assumed to spread over
/// the CPUs evenly, so they leave `limit × (1 - share)`.
pub(super) fn load_between(before: &CpuSample, after: &CpuSample, limit: f64) -> Load {
    let total = after.total - before.total;
    let others = (after.busy - before.busy) - (after.own - before.own);
    let share = if total > 0.0 {
        (others / total).clamp(0.0, 1.0)
    } else {
        0.0
    };
    if share < NOTICEABLE_LOAD {
        return Load {
            busy_elsewhere: 0.0,
            free_cores: limit,
        };
    }
    Load {
        busy_elsewhere: share,
        free_cores: limit * (1.0 - share),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reading after `seconds` on 2 CPUs, `busy` of them busy, `own` by this process.
    fn sample(seconds: f64, busy: f64, own: f64) -> CpuSample {
        CpuSample {
            busy,
            total: 2.0 * seconds,
            own,
        }
    }

    #[test]
    fn what_others_used_leaves_free_cores() {
        let start = sample(1000.0, 300.0, 1.0);
        // 250 ms on 2 CPUs: 0.5 s of CPU; this process used 0.25 s, others 0.2 s.
        let load = load_between(&start, &sample(1000.25, 300.45, 1.25), 2.0);
        assert!((load.busy_elsewhere - 0.4).abs() < 1e-9, "{load:?}");
        assert!((load.free_cores - 1.2).abs() < 1e-9, "{load:?}");
        // The same share of a quota of 1.5 cores.
        let quota = load_between(&start, &sample(1000.25, 300.45, 1.25), 1.5);
        assert!((quota.free_cores - 0.9).abs() < 1e-9, "{quota:?}");
    }

    #[test]
    fn noise_and_our_own_work_are_not_load_from_elsewhere() {
        let start = sample(1000.0, 300.0, 1.0);
        // Only this process was busy, on both CPUs: nothing elsewhere.
        let alone = load_between(&start, &sample(1000.25, 300.5, 1.5), 2.0);
        assert_eq!((alone.busy_elsewhere, alone.free_cores), (0.0, 2.0));
        // 3% of the CPU elsewhere is noise; a tick of rounding that makes it negative too.
        let noise = load_between(&start, &sample(1000.25, 300.265, 1.25), 2.0);
        assert_eq!((noise.busy_elsewhere, noise.free_cores), (0.0, 2.0));
        let rounded = load_between(&start, &sample(1000.25, 300.24, 1.25), 2.0);
        assert_eq!(rounded.busy_elsewhere, 0.0);
        // No time elapsed: no load.
        assert_eq!(load_between(&start, &start, 2.0).free_cores, 2.0);
    }

    #[test]
    fn proc_stat_first_line_parses() {
        let stat = "cpu  495398 0 95141 126069 971 0 549 1774 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let busy = 495_398 + 95_141 + 549 + 1774;
        assert_eq!(parse_proc_stat(stat), Some((busy, busy + 126_069 + 971)));
        assert_eq!(parse_proc_stat("cpu0 1 2 3\n"), None);
        assert_eq!(parse_proc_stat("cpu  1 2 x 4 5 6 7 8\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn readings_move_forward() {
        let before = CpuSample::now().expect("/proc/stat is readable on Linux");
        std::hint::black_box((0..1_000_000_u64).sum::<u64>());
        let after = CpuSample::now().unwrap();
        assert!(after.total >= before.total && after.own > before.own);
    }
}
