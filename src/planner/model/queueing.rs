//! Throughput of workers that alternate between waiting and computing, as a closed queueing
//! network: every worker waits for `wait` seconds (a delay station, no queue: waiting threads
//! do not compete), then computes for `cpu` seconds on cores shared by all computing workers
//! (a processor-sharing station whose rate with `k` runnable workers is `capacity(k)` cores).
//!
//! Both stations are of the kinds whose stationary distribution has product form whatever the
//! distributions of the wait and compute times (BCMP: infinite server, processor sharing with
//! a load-dependent rate), so only the means matter. With `k` of the `N` workers computing:
//!
//! ```text
//! p(k) ∝ wait^(N-k) / (N-k)! · cpu^k / (capacity(1) · … · capacity(k))
//! X(N) = Σ p(k) · capacity(k) / cpu          items per second
//! ```
//!
//! `X(N)` rises like `N / (wait + cpu)` well below the knee `N* = P·(wait + cpu) / cpu` and
//! flattens at `P / cpu` well above it, but near the knee the cores still sit idle for a good
//! share of the time: the workers' bursts of computing bunch up by chance, so some find every
//! core busy while at other moments all are waiting. At the knee itself the cores are busy
//! only 80-90% of the time on 2 cores; twice the knee brings them to 98.5% or more.

/// Items per second that `workers` workers complete when each item waits `wait` seconds and
/// computes `cpu` seconds, with `capacity(k)` cores' worth of CPU shared by `k` computing
/// workers (non-decreasing, at least some CPU for `k >= 1`).
pub(crate) fn throughput(
    wait: f64,
    cpu: f64,
    workers: usize,
    capacity: impl Fn(usize) -> f64,
) -> f64 {
    let workers = workers.max(1);
    let (wait, cpu) = (wait.max(0.0), cpu.max(0.0));
    if cpu <= 0.0 {
        return if wait > 0.0 {
            workers as f64 / wait
        } else {
            f64::INFINITY
        };
    }
    if wait <= 0.0 {
        return capacity(workers) / cpu;
    }
    // Logarithms of the unnormalised p(k), so that many workers cannot overflow.
    let n = workers as f64;
    let mut log_weight = Vec::with_capacity(workers + 1);
    log_weight.push(0.0);
    for k in 1..=workers {
        let ratio = (n - k as f64 + 1.0) / wait * cpu / capacity(k).max(f64::MIN_POSITIVE);
        log_weight.push(log_weight[k - 1] + ratio.ln());
    }
    let top = log_weight.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (mut total, mut busy) = (0.0, 0.0);
    for (k, &log) in log_weight.iter().enumerate() {
        let weight = (log - top).exp();
        total += weight;
        if k > 0 {
            busy += weight * capacity(k);
        }
    }
    busy / total / cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores(p: usize) -> impl Fn(usize) -> f64 {
        move |k| k.min(p) as f64
    }

    #[test]
    fn computing_work_runs_at_the_cores_speed() {
        assert_eq!(throughput(0.0, 0.5, 1, cores(2)), 2.0);
        assert_eq!(throughput(0.0, 0.5, 8, cores(2)), 4.0);
    }

    #[test]
    fn waiting_work_scales_with_the_workers() {
        assert_eq!(throughput(0.25, 0.0, 8, cores(2)), 32.0);
    }

    #[test]
    fn one_worker_alternates() {
        let x = throughput(3.0, 1.0, 1, cores(2));
        assert!((x - 0.25).abs() < 1e-12, "{x}");
    }

    #[test]
    fn the_knee_leaves_cores_idle_and_twice_the_knee_fills_them() {
        // 1 ms wait + 0.3 ms compute on 2 cores: the knee is 8.7 workers, the bound 8.67x.
        let speedup = |n| throughput(1.0, 0.3, n, cores(2)) * 1.3;
        let bound = 2.0 * 1.3 / 0.3;
        assert!((speedup(9) / bound - 0.87).abs() < 0.01, "{}", speedup(9));
        assert!(speedup(18) / bound > 0.995, "{}", speedup(18));
        assert!(speedup(64) <= bound * (1.0 + 1e-9));
        for n in 1..64 {
            assert!(
                speedup(n + 1) >= speedup(n),
                "monotone in the workers at {n}"
            );
            assert!(
                speedup(n) <= n as f64 * (1.0 + 1e-9),
                "never more than n at {n}"
            );
        }
    }

    #[test]
    fn many_workers_do_not_overflow() {
        let x = throughput(1e-9, 1.0, 10_000, cores(4));
        assert!((x - 4.0).abs() < 1e-9, "{x}");
        let x = throughput(1e3, 1e-9, 10_000, cores(4));
        assert!((x - 10.0).abs() < 1e-6, "{x}");
    }
}
