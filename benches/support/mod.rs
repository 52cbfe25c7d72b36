//! Workloads shared by the benchmark suites, so every suite times the same work.

/// `rounds` draws from a generator seeded with `seed`: pure CPU work that the optimiser
/// cannot remove, since the result depends on every draw. A draw costs about 0.5 ns on the
/// project's machine, a third of a round of the xorshift it replaced, so the suites use three
/// times the rounds they did, keeping their task sizes (about 1.6 ms and 3.2 ms).
pub fn spin_work_rounds(seed: u64, rounds: u32) -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..rounds).fold(0, |acc, _| acc ^ rng.u64(..))
}
