//! The scaling laws, as free functions for users who only want the math, and the Universal
//! Scalability Law fit that the planner refits from measured runs.
//!
//! # Design
//!
//! The USL is fitted in its time form `T(N) = A/N + B + C·N`, which is linear in `{1/N, 1, N}`.
//! With at most three unknowns, non-negative least squares is solved exactly by trying every
//! non-empty subset of the coefficients, solving the weighted normal equations on it, and
//! keeping the best feasible solution; smaller subsets win ties, so two measured worker counts
//! give the Amdahl-shaped fit (`C = 0`) rather than an arbitrary exact one. Weights are
//! `1/T²`, so every point counts by its relative error.

use std::time::Duration;

use crate::Error;

fn check_fraction(name: &str, value: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{name} must be a fraction in [0, 1], got {value}"
        )))
    }
}

fn check_workers(n: f64) -> Result<(), Error> {
    if n.is_finite() && n >= 1.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "the number of workers must be finite and at least 1, got {n}"
        )))
    }
}

/// Amdahl's law: the speedup on `n` workers of a program whose fraction `p` of the work runs
/// in parallel, `1 / ((1 - p) + p / n)`. It can never exceed `1 / (1 - p)`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `p` is outside `[0, 1]` or `n` is not a finite number `>= 1`.
///
/// ```
/// let s = parexec::planner::amdahl(0.95, 8.0)?;
/// assert!((s - 5.926).abs() < 1e-3);
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn amdahl(p: f64, n: f64) -> Result<f64, Error> {
    check_fraction("the parallel fraction", p)?;
    check_workers(n)?;
    Ok(amdahl_unchecked(p, n))
}

pub(crate) fn amdahl_unchecked(p: f64, n: f64) -> f64 {
    1.0 / ((1.0 - p) + p / n)
}

/// Gustafson's law: the scaled speedup on `n` workers when the work grows with `n` and the
/// serial fraction of the parallel run is `s`, `n - s (n - 1)`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `s` is outside `[0, 1]` or `n` is not a finite number `>= 1`.
///
/// ```
/// assert_eq!(parexec::planner::gustafson(0.1, 8.0)?, 7.3);
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn gustafson(s: f64, n: f64) -> Result<f64, Error> {
    check_fraction("the serial fraction", s)?;
    check_workers(n)?;
    Ok(n - s * (n - 1.0))
}

/// The Karp–Flatt metric: the serial fraction `e = (1/S - 1/n) / (1 - 1/n)` implied by a
/// measured `speedup` on `n > 1` workers. A flat `e` across worker counts means truly serial
/// code; an `e` that grows with `n` means overhead that grows with the pool.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `speedup` is not a positive finite number or `n` is not a
/// finite number `> 1`.
///
/// ```
/// // 8 workers gave 5.926x: that is Amdahl with 5% serial code.
/// let e = parexec::planner::karp_flatt(5.926, 8.0)?;
/// assert!((e - 0.05).abs() < 1e-3);
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn karp_flatt(speedup: f64, n: f64) -> Result<f64, Error> {
    if !(speedup.is_finite() && speedup > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "a speedup must be positive and finite, got {speedup}"
        )));
    }
    if !(n.is_finite() && n > 1.0) {
        return Err(Error::InvalidArgument(format!(
            "the Karp-Flatt metric needs more than one worker, got {n}"
        )));
    }
    Ok(karp_flatt_unchecked(speedup, n))
}

pub(crate) fn karp_flatt_unchecked(speedup: f64, n: f64) -> f64 {
    (1.0 / speedup - 1.0 / n) / (1.0 - 1.0 / n)
}

/// The imbalance bound for independent items: whatever the number of workers, the speedup
/// cannot exceed the total work divided by the largest single item, `W / t_max`.
///
/// # Errors
///
/// [`Error::InvalidArgument`] if `largest` is zero or exceeds `total`.
///
/// ```
/// use std::time::Duration;
/// // One item is 30% of all the work: never more than 3.3x.
/// let bound = parexec::planner::imbalance_bound(Duration::from_secs(10), Duration::from_secs(3))?;
/// assert!((bound - 3.333).abs() < 1e-3);
/// # Ok::<(), parexec::Error>(())
/// ```
pub fn imbalance_bound(total: Duration, largest: Duration) -> Result<f64, Error> {
    if largest.is_zero() || largest > total {
        return Err(Error::InvalidArgument(format!(
            "the largest item ({largest:?}) must be non-zero and within the total work ({total:?})"
        )));
    }
    Ok(total.as_secs_f64() / largest.as_secs_f64())
}

/// A Universal Scalability Law model in time form, `T(N) = a/N + b + c·N` (seconds).
///
/// `a` is the perfectly parallel work, `b` the serial part, `c` the cost that grows with every
/// added worker (coordination, contention); with `c > 0` the time is lowest at
/// [`peak_workers`](UslFit::peak_workers) `= sqrt(a / c)`. Build one with [`UslFit::fit`] from
/// measured run times, or with [`UslFit::from_karp_flatt`] from measured speedups.
///
/// ```
/// use std::time::Duration;
/// use parexec::planner::UslFit;
///
/// let runs = [(1, 10.0), (2, 5.5), (4, 3.25), (8, 2.125)]
///     .map(|(n, secs)| (n, Duration::from_secs_f64(secs)));
/// let fit = UslFit::fit(&runs)?;
/// assert!((fit.a - 9.0).abs() < 1e-6 && (fit.b - 1.0).abs() < 1e-6 && fit.c.abs() < 1e-9);
/// assert!((fit.speedup(16.0) - 10.0 / (9.0 / 16.0 + 1.0)).abs() < 1e-6);
/// # Ok::<(), parexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UslFit {
    /// Seconds of work that divide perfectly among the workers.
    pub a: f64,
    /// Seconds that no number of workers shortens (it may be negative in a fit from
    /// Karp–Flatt points whose serial fraction grows faster than its constant part).
    pub b: f64,
    /// Seconds added per worker.
    pub c: f64,
}

impl UslFit {
    /// Fits the model to measured `(workers, elapsed)` runs by non-negative least squares,
    /// weighted so that every run counts by its relative error.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if there are no runs, a run has zero workers or a zero time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let fit = parexec::planner::UslFit::fit(&[(1, Duration::from_secs(4)), (2, Duration::from_secs(2))])?;
    /// assert!((fit.predict(4.0) - 1.0).abs() < 1e-9);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn fit(runs: &[(usize, Duration)]) -> Result<UslFit, Error> {
        if runs.is_empty() {
            return Err(Error::InvalidArgument(
                "a scalability fit needs at least one measured run".into(),
            ));
        }
        if let Some(&(n, t)) = runs.iter().find(|(n, t)| *n == 0 || t.is_zero()) {
            return Err(Error::InvalidArgument(format!(
                "a measured run needs at least one worker and a non-zero time, got {n} workers in {t:?}"
            )));
        }
        let points: Vec<([f64; 3], f64)> = runs
            .iter()
            .map(|&(n, t)| {
                let n = n as f64;
                ([1.0 / n, 1.0, n], t.as_secs_f64())
            })
            .collect();
        let [a, b, c] = nonnegative_least_squares(&points);
        Ok(UslFit { a, b, c })
    }

    /// Builds the model from measured speedups on more than one worker, through the
    /// Karp–Flatt serial fraction `e(N) = σ + κ·N` (fitted non-negatively), given the
    /// one-worker time `t1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `t1` is zero, there are no points, or a point has at most
    /// one worker or a speedup that is not positive and finite.
    ///
    /// ```
    /// use std::time::Duration;
    /// // Amdahl with 10% serial work, measured on 2 and 4 workers.
    /// let points = [(2, 1.0 / 0.55), (4, 1.0 / 0.325)];
    /// let fit = parexec::planner::UslFit::from_karp_flatt(Duration::from_secs(10), &points)?;
    /// assert!((fit.b - 1.0).abs() < 1e-6 && fit.c.abs() < 1e-9);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn from_karp_flatt(t1: Duration, points: &[(usize, f64)]) -> Result<UslFit, Error> {
        if t1.is_zero() || points.is_empty() {
            return Err(Error::InvalidArgument(
                "a Karp-Flatt fit needs a non-zero one-worker time and at least one point".into(),
            ));
        }
        let mut rows = Vec::with_capacity(points.len());
        for &(n, speedup) in points {
            let e = karp_flatt(speedup, n as f64)?;
            rows.push(([1.0, n as f64, 0.0], e));
        }
        // Fit e = sigma + kappa * N unweighted: e is already a ratio. The third column is unused.
        let [sigma, kappa, _] = least_squares_subsets(&rows, |_| 1.0, &[0b001, 0b010, 0b011]);
        let t1 = t1.as_secs_f64();
        Ok(UslFit {
            a: t1 * (1.0 - sigma),
            b: t1 * (sigma - kappa),
            c: t1 * kappa,
        })
    }

    /// The predicted time in seconds on `n` workers.
    ///
    /// ```
    /// let fit = parexec::planner::UslFit { a: 8.0, b: 1.0, c: 0.5 };
    /// assert_eq!(fit.predict(2.0), 6.0);
    /// ```
    pub fn predict(&self, n: f64) -> f64 {
        self.a / n + self.b + self.c * n
    }

    /// The predicted speedup on `n` workers over one worker.
    ///
    /// ```
    /// let fit = parexec::planner::UslFit { a: 8.0, b: 1.0, c: 0.5 };
    /// assert_eq!(fit.speedup(2.0), 9.5 / 6.0);
    /// ```
    pub fn speedup(&self, n: f64) -> f64 {
        self.predict(1.0) / self.predict(n)
    }

    /// The worker count with the lowest predicted time, `sqrt(a / c)`; `None` when nothing
    /// grows with the pool (`c = 0`), so more workers never hurt.
    ///
    /// ```
    /// let fit = parexec::planner::UslFit { a: 8.0, b: 1.0, c: 0.5 };
    /// assert_eq!(fit.peak_workers(), Some(4.0));
    /// ```
    pub fn peak_workers(&self) -> Option<f64> {
        (self.c > 0.0).then(|| (self.a / self.c).sqrt())
    }

    /// The USL contention coefficient σ, the serial fraction: `1 - a / T(1)`.
    ///
    /// ```
    /// let fit = parexec::planner::UslFit { a: 9.0, b: 1.0, c: 0.0 };
    /// assert!((fit.contention() - 0.1).abs() < 1e-12);
    /// ```
    pub fn contention(&self) -> f64 {
        1.0 - self.a / self.predict(1.0)
    }

    /// The USL coherence coefficient κ, the cost per added worker: `c / T(1)`.
    ///
    /// ```
    /// let fit = parexec::planner::UslFit { a: 8.0, b: 1.0, c: 1.0 };
    /// assert_eq!(fit.coherence(), 0.1);
    /// ```
    pub fn coherence(&self) -> f64 {
        self.c / self.predict(1.0)
    }
}

/// Every subset of the three USL coefficients, smallest first, the Amdahl-shaped ones first
/// within a size, so ties go to the simplest explanation.
const USL_SUBSETS: [u8; 7] = [0b001, 0b010, 0b100, 0b011, 0b101, 0b110, 0b111];

fn nonnegative_least_squares(points: &[([f64; 3], f64)]) -> [f64; 3] {
    least_squares_subsets(points, |y| 1.0 / (y * y), &USL_SUBSETS)
}

/// Weighted least squares restricted, in turn, to each coefficient subset in `subsets`; returns
/// the feasible (all coefficients `>= 0`) solution with the smallest residual. A later subset
/// must beat the best so far by a clear margin, which keeps the earlier, simpler one on ties.
fn least_squares_subsets(
    points: &[([f64; 3], f64)],
    weight: impl Fn(f64) -> f64,
    subsets: &[u8],
) -> [f64; 3] {
    let mut best = ([0.0; 3], f64::INFINITY);
    for &mask in subsets {
        let cols: Vec<usize> = (0..3).filter(|i| mask & (1 << i) != 0).collect();
        let Some(coef) = solve_normal_equations(points, &weight, &cols) else {
            continue;
        };
        if coef.iter().any(|&x| x < 0.0) {
            continue;
        }
        let mut full = [0.0; 3];
        for (&col, &x) in cols.iter().zip(&coef) {
            full[col] = x;
        }
        let residual: f64 = points
            .iter()
            .map(|(x, y)| {
                let fitted: f64 = x.iter().zip(&full).map(|(a, b)| a * b).sum();
                weight(*y) * (fitted - y).powi(2)
            })
            .sum();
        if residual < best.1 - 1e-12 * (1.0 + best.1.min(1e12)) {
            best = (full, residual);
        }
    }
    best.0
}

/// Solves the weighted normal equations on the chosen columns by Gaussian elimination with
/// partial pivoting; `None` when they are singular (fewer distinct points than unknowns).
fn solve_normal_equations(
    points: &[([f64; 3], f64)],
    weight: &impl Fn(f64) -> f64,
    cols: &[usize],
) -> Option<Vec<f64>> {
    let k = cols.len();
    let mut m = vec![vec![0.0; k + 1]; k];
    for (x, y) in points {
        let w = weight(*y);
        for (r, &ci) in cols.iter().enumerate() {
            for (c, &cj) in cols.iter().enumerate() {
                m[r][c] += w * x[ci] * x[cj];
            }
            m[r][k] += w * x[ci] * y;
        }
    }
    let scale = m
        .iter()
        .flat_map(|row| row[..k].iter())
        .fold(0.0_f64, |acc, v| acc.max(v.abs()));
    for col in 0..k {
        let pivot = (col..k).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() <= 1e-10 * scale {
            return None;
        }
        m.swap(col, pivot);
        let pivot_row = m[col].clone();
        for (r, row) in m.iter_mut().enumerate() {
            if r != col {
                let factor = row[col] / pivot_row[col];
                for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *x -= factor * p;
                }
            }
        }
    }
    Some((0..k).map(|i| m[i][k] / m[i][i]).collect())
}

#[cfg(test)]
mod test;
