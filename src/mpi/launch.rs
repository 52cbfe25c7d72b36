//! Recognising an MPI launch, initialising MPI, proving the build's identity, and ending the
//! job so that no rank is left behind.

use std::hash::Hasher;
use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use parking_lot::Mutex;

use crate::Error;

/// Variables that `mpirun`/`mpiexec` (Open MPI, MPICH's Hydra) or Slurm's PMI/PMIx plugins
/// give every rank they start.
const LAUNCH_VARIABLES: [&str; 4] = ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"];

/// How long rank 0, on its way out, waits for the worker ranks to say goodbye before it aborts
/// the job instead.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(10);

/// This process's place in the MPI job.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) rank: usize,
    pub(crate) size: usize,
    /// The processor name MPI reports, usually the host name.
    pub(crate) host: String,
    /// How long `MPI_Init_thread` took in this process.
    pub(crate) init_took: Duration,
    /// Whether MPI lets a thread other than the one that initialised it make MPI calls, one
    /// at a time (rank 0 talks to the workers from its own thread).
    pub(crate) serialized: bool,
}

static WORLD: OnceLock<Option<World>> = OnceLock::new();
/// Dropping the universe finalizes MPI: done once, at exit.
static UNIVERSE: Mutex<Option<Universe>> = Mutex::new(None);

/// The MPI part of [`crate::init`]: worker ranks serve here and never return.
pub(crate) fn init() {
    if let Some(world) = world() {
        if world.rank != 0 {
            super::worker::serve(world);
        }
    }
}

/// The MPI job this process belongs to, initialising MPI on the first call; `None` when the
/// process was not started as an MPI rank.
pub(crate) fn world() -> Option<&'static World> {
    WORLD.get_or_init(start).as_ref()
}

/// Whether this process is rank 0 of an MPI job with worker ranks, initialising MPI if needed.
pub(crate) fn has_workers() -> bool {
    world().is_some_and(|w| w.rank == 0 && w.size > 1)
}

fn start() -> Option<World> {
    if !launched_by_mpi() {
        return None;
    }
    let began = std::time::Instant::now();
    let (universe, threading) = mpi::initialize_with_threading(Threading::Multiple)?;
    let init_took = began.elapsed();
    let comm = universe.world();
    let world = World {
        rank: usize::try_from(comm.rank()).unwrap_or(0),
        size: usize::try_from(comm.size()).unwrap_or(1),
        host: mpi::environment::processor_name().unwrap_or_else(|_| "unknown host".into()),
        init_took,
        serialized: matches!(threading, Threading::Serialized | Threading::Multiple),
    };
    *UNIVERSE.lock() = Some(universe);
    if world.rank == 0 {
        // SAFETY: `finalize_at_exit` is an `extern "C" fn()` that never unwinds.
        unsafe { libc::atexit(finalize_at_exit) };
    }
    Some(world)
}

/// Whether a launcher started this process as a rank. A process that a rank starts (say, a
/// worker of a `ProcessPool` or any other copy of the program) inherits the launcher's
/// variables, but then its parent has them too, while a launcher's own environment lacks them.
fn launched_by_mpi() -> bool {
    let launched = |environment: &[u8]| {
        LAUNCH_VARIABLES.iter().any(|name| {
            environment.split(|&b| b == 0).any(|entry| {
                entry.starts_with(name.as_bytes()) && entry.get(name.len()) == Some(&b'=')
            })
        })
    };
    if !LAUNCH_VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some())
    {
        return false;
    }
    let parent = std::os::unix::process::parent_id();
    std::fs::read(format!("/proc/{parent}/environ")).map_or(true, |env| !launched(&env))
}

/// Rank 0's last act, run by the C library when the process exits (also after `main` returns
/// or panics): tell the worker ranks to stop, wait for them, and finalize MPI. Without a
/// goodbye from every rank within [`GOODBYE_TIMEOUT`], abort the whole job instead, so that no
/// rank is left running.
extern "C" fn finalize_at_exit() {
    let ended = std::panic::catch_unwind(|| {
        let stopped = match world() {
            Some(world) if world.size > 1 => super::link::stop_workers(GOODBYE_TIMEOUT),
            _ => true,
        };
        if !stopped {
            eprintln!(
                "parexec: worker ranks did not stop within {GOODBYE_TIMEOUT:?}; aborting the MPI job"
            );
            SimpleCommunicator::world().abort(1);
        }
        finalize();
    });
    if ended.is_err() {
        SimpleCommunicator::world().abort(1);
    }
}

/// Finalizes MPI (once; later calls do nothing).
pub(crate) fn finalize() {
    drop(UNIVERSE.lock().take());
}

/// A hash of this executable's contents: equal on every rank exactly when all run the same
/// build, wherever each machine keeps the file. Paths and inodes differ between machines, so
/// they cannot serve.
pub(crate) fn identity() -> Result<u64, Error> {
    static IDENTITY: OnceLock<Result<u64, String>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| hash_file("/proc/self/exe").map_err(|e| e.to_string()))
        .clone()
        .map_err(|e| Error::Mpi(format!("could not read this executable to hash it: {e}")))
}

fn hash_file(path: &str) -> std::io::Result<u64> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = std::hash::DefaultHasher::new();
    let mut buffer = vec![0; 1 << 20];
    loop {
        match file.read(&mut buffer)? {
            0 => return Ok(hasher.finish()),
            n => hasher.write(&buffer[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_process_is_not_a_rank() {
        // The test harness is not started by mpirun (CI never runs unit tests under it).
        assert!(world().is_none());
        assert!(!has_workers());
        init();
    }

    #[test]
    fn identity_is_a_stable_content_hash() {
        let first = identity().unwrap();
        assert_eq!(identity().unwrap(), first);
        let dir = std::env::temp_dir().join(format!("parexec-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("copy");
        std::fs::copy("/proc/self/exe", &copy).unwrap();
        let path = copy.to_str().unwrap();
        assert_eq!(hash_file(path).unwrap(), first, "another inode, same bytes");
        std::fs::write(&copy, b"another build").unwrap();
        assert_ne!(hash_file(path).unwrap(), first);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
