//! What the planner needs to know about MPI on this job, measured through the worker ranks
//! once per process: start-up, the overhead of one chunk, and the cost of moving a byte.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::builder::FIRST_OPEN;
use super::session::Shared;
use super::{MpiPool, launch};
use crate::{Error, Future};

/// One-item tasks timed for the per-chunk overhead, all in flight at once.
const OVERHEAD_TASKS: u32 = 300;
/// Size and number of the payloads timed for the transfer cost.
const PROBE_PAYLOAD: usize = 512 << 10;
const PROBE_PAYLOADS: usize = 16;

fn echo(x: u32) -> u32 {
    x
}

fn byte_len(bytes: Vec<u8>) -> usize {
    bytes.len()
}

/// What one measurement of the job found; the planner turns it into its executor costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct MpiCosts {
    /// `MPI_Init` plus the first pool's handshake, shared out over the workers.
    pub(crate) startup_per_worker: Duration,
    /// One chunk's round trip, as a worker sees it when every worker is busy.
    pub(crate) per_chunk: Duration,
    /// Moving one byte of payload, at least the encoding cost given to [`costs`].
    pub(crate) transfer_ns_per_byte: f64,
    /// Task threads over all worker ranks.
    pub(crate) workers: usize,
    /// Distinct hosts among the worker ranks.
    pub(crate) hosts: usize,
}

/// The costs of an `MpiPool` here, measured on the first call (through the open pool if there
/// is one, else through a pool opened for the purpose) and cached after. `encoding_ns_per_byte`
/// is this machine's postcard cost, the floor of the transfer cost.
pub(crate) fn costs(encoding_ns_per_byte: f64) -> Result<MpiCosts, Error> {
    static COSTS: OnceLock<Result<MpiCosts, Error>> = OnceLock::new();
    COSTS
        .get_or_init(|| match Shared::current() {
            Some(open) => measure(&open, encoding_ns_per_byte),
            None => {
                let pool = MpiPool::builder().keep_workers().build()?;
                measure(&pool.shared, encoding_ns_per_byte)
            }
        })
        .clone()
}

/// Waits for every future, all of them submitted before the first wait.
fn pipelined<T>(futures: Vec<Future<T>>) -> Result<(), Error> {
    futures.into_iter().try_for_each(|f| f.result().map(drop))
}

fn measure(pool: &Arc<Shared>, encoding_ns_per_byte: f64) -> Result<MpiCosts, Error> {
    let world = launch::world().ok_or_else(|| Error::Mpi("not an MPI rank".into()))?;
    let workers = pool.workers().max(1);
    let hosts = {
        let mut hosts: Vec<&str> = pool.ranks().iter().map(|r| r.host.as_str()).collect();
        hosts.sort_unstable();
        hosts.dedup();
        hosts.len()
    };
    let began = Instant::now();
    pipelined((0..OVERHEAD_TASKS).map(|i| pool.submit(echo, i)).collect())?;
    let per_chunk = began.elapsed() * workers as u32 / OVERHEAD_TASKS;
    let payloads = vec![vec![0_u8; PROBE_PAYLOAD]; PROBE_PAYLOADS];
    let began = Instant::now();
    pipelined(
        payloads
            .into_iter()
            .map(|p| pool.submit(byte_len, p))
            .collect(),
    )?;
    let moved = began
        .elapsed()
        .saturating_sub(per_chunk * PROBE_PAYLOADS as u32 / workers as u32);
    let per_byte = moved.as_nanos() as f64 / (PROBE_PAYLOAD * PROBE_PAYLOADS) as f64;
    let startup = world.init_took + FIRST_OPEN.get().copied().unwrap_or_default();
    Ok(MpiCosts {
        startup_per_worker: startup / workers as u32,
        per_chunk,
        transfer_ns_per_byte: per_byte.max(encoding_ns_per_byte),
        workers,
        hosts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_mpi_there_is_nothing_to_measure() {
        assert!(matches!(costs(1.0), Err(Error::Mpi(_))));
    }
}
