//! Workloads shared by the benchmark suites, so every suite times the same work.

/// `rounds` xorshift steps: pure CPU work that the optimiser cannot remove.
pub fn spin_work_rounds(seed: u64, rounds: u32) -> u64 {
    let mut x = seed | 1;
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}
