//! Rank 0's polling policy.

use super::*;

#[test]
fn rank_0_naps_only_while_every_rank_has_work_queued() {
    let cap = Duration::from_millis(1);
    let nap =
        |ranks: &[(usize, usize)], micros: f64| poll_nap(ranks.iter().copied(), micros * 1e3, cap);
    assert_eq!(
        nap(&[(1, 2), (1, 2)], 3_200.0),
        Some(cap),
        "3.2 ms queued each"
    );
    assert_eq!(
        nap(&[(2, 3), (1, 2)], 1_000.0),
        Some(Duration::from_micros(250)),
        "half a task per thread queued on the first rank"
    );
    assert_eq!(
        nap(&[(1, 2), (1, 1)], 3_200.0),
        None,
        "a rank has nothing queued"
    );
    assert_eq!(nap(&[(1, 64)], 1.0), None, "too little queued to sleep on");
}
