//! parexec in one page: submit, map, as_completed and wait on a small CPU-bound workload,
//! with serial and pool timings side by side.
//!
//! ```sh
//! cargo run --release --example quickstart
//! ```

use std::time::{Duration, Instant};

use parexec::{ReturnWhen, ThreadPool, as_completed, wait};

/// Counts the primes below `limit` by trial division: a few milliseconds of pure CPU work.
fn count_primes(limit: u64) -> u64 {
    (2..limit)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

fn main() -> Result<(), parexec::Error> {
    // Pools chain to the panic hook installed before them (here, one line instead of Rust's
    // default report) and add the panic's location to `Error::Panicked`.
    std::panic::set_hook(Box::new(|info| eprintln!("(a task panicked: {info})")));
    let pool = ThreadPool::new(std::thread::available_parallelism().map_or(2, usize::from))?;
    let limits: Vec<u64> = (0..64).map(|i| 40_000 + 500 * i).collect();
    println!(
        "parexec quickstart: {} workers, {} tasks",
        pool.workers(),
        limits.len()
    );

    // One task, one future.
    let answer = pool.submit(|| count_primes(100_000)).result()?;
    println!("submit:       {answer} primes below 100,000");

    // Serial baseline, then the same work through an ordered, chunked, lazy map.
    let started = Instant::now();
    let serial: Vec<u64> = limits.iter().copied().map(count_primes).collect();
    let serial_time = started.elapsed();

    let started = Instant::now();
    let parallel: Vec<u64> = pool
        .map(count_primes, limits.clone())
        .collect::<Result<_, _>>()?;
    let pool_time = started.elapsed();
    assert_eq!(serial, parallel);
    println!(
        "map:          serial {:>7.1} ms | pool {:>7.1} ms | speedup {:.2}x",
        ms(serial_time),
        ms(pool_time),
        serial_time.as_secs_f64() / pool_time.as_secs_f64()
    );

    // Results as they finish, whatever order they were submitted in.
    let futures: Vec<_> = limits
        .iter()
        .rev()
        .take(8)
        .map(|&limit| pool.submit(move || (limit, count_primes(limit))))
        .collect();
    let first = as_completed(futures)
        .map(|done| done.result())
        .next()
        .transpose()?;
    if let Some((limit, primes)) = first {
        println!("as_completed: first finished was {primes} primes below {limit}");
    }

    // A failing task surfaces as an error without disturbing the others.
    let mut batch: Vec<_> = (1..=3_u64)
        .map(|i| pool.submit(move || count_primes(10_000 * i)))
        .collect();
    batch.push(pool.submit(|| -> u64 { panic!("a bad input") }));
    let (done, pending) = wait(
        batch,
        ReturnWhen::AllCompleted,
        Some(Duration::from_secs(60)),
    );
    let failed = done
        .into_iter()
        .filter_map(|f| f.result().err())
        .collect::<Vec<_>>();
    println!(
        "wait:         {} failed ({}), {} still pending",
        failed.len(),
        failed.first().map_or_else(String::new, ToString::to_string),
        pending.len()
    );

    pool.shutdown();
    let stats = pool.stats();
    println!(
        "stats:        {} tasks, {} failed, {:.1} ms busy, {:.2} ms queued",
        stats.submitted,
        stats.failed,
        ms(stats.busy),
        ms(stats.queue_wait)
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
