use super::*;

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + b.abs())
}

#[test]
fn amdahl_matches_hand_computed_values() {
    // 1 / (0.05 + 0.95 / 8) = 1 / 0.16875
    assert!(close(amdahl(0.95, 8.0).unwrap(), 5.925_925_9, 1e-7));
    assert_eq!(amdahl(1.0, 4.0).unwrap(), 4.0);
    assert_eq!(amdahl(0.0, 64.0).unwrap(), 1.0);
    assert_eq!(amdahl(0.5, 1.0).unwrap(), 1.0);
    assert!(amdahl(1.5, 2.0).is_err());
    assert!(amdahl(0.5, 0.5).is_err());
    assert!(amdahl(f64::NAN, 2.0).is_err());
}

#[test]
fn gustafson_matches_hand_computed_values() {
    assert!(close(gustafson(0.1, 8.0).unwrap(), 7.3, 1e-12));
    assert_eq!(gustafson(0.0, 16.0).unwrap(), 16.0);
    assert_eq!(gustafson(1.0, 16.0).unwrap(), 1.0);
    assert!(gustafson(-0.1, 2.0).is_err());
    assert!(gustafson(0.1, f64::INFINITY).is_err());
}

#[test]
fn karp_flatt_inverts_amdahl() {
    for f in [0.0, 0.01, 0.3, 0.9] {
        for n in [2.0, 8.0, 64.0] {
            let s = amdahl(1.0 - f, n).unwrap();
            assert!(close(karp_flatt(s, n).unwrap(), f, 1e-9), "f {f} n {n}");
        }
    }
    // 2 workers, 1.5x: (1/1.5 - 1/2) / (1/2) = 1/3
    assert!(close(karp_flatt(1.5, 2.0).unwrap(), 1.0 / 3.0, 1e-12));
    assert!(karp_flatt(1.5, 1.0).is_err());
    assert!(karp_flatt(0.0, 2.0).is_err());
}

#[test]
fn imbalance_bound_is_work_over_largest_item() {
    let total = Duration::from_secs(4);
    assert_eq!(
        imbalance_bound(total, Duration::from_secs(3)).unwrap(),
        4.0 / 3.0
    );
    assert!(imbalance_bound(total, Duration::ZERO).is_err());
    assert!(imbalance_bound(total, Duration::from_secs(5)).is_err());
}

fn runs(model: UslFit, ns: &[usize]) -> Vec<(usize, Duration)> {
    ns.iter()
        .map(|&n| (n, Duration::from_secs_f64(model.predict(n as f64))))
        .collect()
}

#[test]
fn usl_fit_recovers_known_parameters() {
    let truth = UslFit {
        a: 20.0,
        b: 0.5,
        c: 0.05,
    };
    let fit = UslFit::fit(&runs(truth, &[1, 2, 4, 8, 16, 32])).unwrap();
    assert!(
        close(fit.a, 20.0, 1e-6) && close(fit.b, 0.5, 1e-6) && close(fit.c, 0.05, 1e-6),
        "{fit:?}"
    );
    assert!(close(fit.peak_workers().unwrap(), 20.0, 1e-6));
    assert!(close(fit.contention(), 1.0 - 20.0 / 20.55, 1e-9));
    assert!(close(fit.coherence(), 0.05 / 20.55, 1e-9));
}

#[test]
fn usl_fit_tolerates_noise() {
    let truth = UslFit {
        a: 10.0,
        b: 1.0,
        c: 0.02,
    };
    let noise = [1.02, 0.98, 1.01, 0.99, 1.02, 0.985];
    let noisy: Vec<_> = runs(truth, &[1, 2, 3, 4, 6, 8])
        .into_iter()
        .zip(noise)
        .map(|((n, t), k)| (n, t.mul_f64(k)))
        .collect();
    let fit = UslFit::fit(&noisy).unwrap();
    for n in [1.0, 4.0, 16.0] {
        assert!(
            close(fit.predict(n), truth.predict(n), 0.05),
            "n {n}: {fit:?}"
        );
    }
}

#[test]
fn usl_fit_keeps_coefficients_non_negative() {
    // Superlinear points would need a negative serial part; the fit clamps it to zero.
    let fit = UslFit::fit(&[
        (1, Duration::from_secs(10)),
        (2, Duration::from_secs_f64(4.5)),
        (4, Duration::from_secs_f64(2.2)),
    ])
    .unwrap();
    assert!(fit.a >= 0.0 && fit.b >= 0.0 && fit.c >= 0.0, "{fit:?}");
}

#[test]
fn two_worker_counts_give_the_amdahl_shaped_fit() {
    let fit = UslFit::fit(&[(1, Duration::from_secs(10)), (2, Duration::from_secs(6))]).unwrap();
    assert!(
        close(fit.a, 8.0, 1e-9) && close(fit.b, 2.0, 1e-9) && fit.c == 0.0,
        "{fit:?}"
    );
    assert_eq!(fit.peak_workers(), None);
}

#[test]
fn usl_fit_rejects_bad_runs() {
    assert!(UslFit::fit(&[]).is_err());
    assert!(UslFit::fit(&[(0, Duration::from_secs(1))]).is_err());
    assert!(UslFit::fit(&[(1, Duration::ZERO)]).is_err());
}

#[test]
fn karp_flatt_route_recovers_usl_parameters() {
    let truth = UslFit {
        a: 18.0,
        b: 1.5,
        c: 0.5,
    }; // T1 = 20, sigma = 0.1, kappa = 0.025
    let points: Vec<(usize, f64)> = [2, 4, 8]
        .iter()
        .map(|&n| (n, truth.speedup(n as f64)))
        .collect();
    let fit = UslFit::from_karp_flatt(Duration::from_secs(20), &points).unwrap();
    assert!(
        close(fit.a, 18.0, 1e-6) && close(fit.b, 1.5, 1e-6) && close(fit.c, 0.5, 1e-6),
        "{fit:?}"
    );
    assert!(UslFit::from_karp_flatt(Duration::ZERO, &points).is_err());
    assert!(UslFit::from_karp_flatt(Duration::from_secs(1), &[(1, 1.0)]).is_err());
}
