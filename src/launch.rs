//! Which role this process plays: a worker of a process pool or of an MPI job, or the program
//! itself. Executors depend on nothing here; this module calls into each of them.

/// Serves as a worker if a [`ProcessPool`](crate::ProcessPool) started this process and it is not serving yet;
/// otherwise returns at once. Optional for process pools (a harmless no-op on Linux, macOS and
/// the BSDs); with the `mpi` feature, required first thing in `main` for `MpiPool`.
///
/// A pool re-executes the current program as its workers. A constructor in this crate runs
/// before `main` in every process that links it and, in a worker, serves tasks and exits
/// there, so the program's `main` never runs in a worker: its side effects (files written,
/// arguments parsed, servers bound) happen once, in the parent. In any other process the
/// constructor costs one environment lookup. This works the same in binaries, examples,
/// tests under the standard harness, `harness = false` tests and criterion benches, with or
/// without a call to `init`.
///
/// Since `main` does not run in a worker, neither does anything it sets up before building a
/// pool (a panic hook, logging, globals): give the pool an
/// [`initializer`](crate::ProcessPoolBuilder::initializer) for what workers need too.
///
/// `init` is the fallback for a platform where constructors do not run: there a worker
/// reaches `main`, and calling `init` first thing in `main` makes it serve. A pool whose
/// workers could not serve (no constructor ran and `main` has not called `init`) fails at
/// once with [`Error::Handshake`](crate::Error::Handshake) naming `init`, instead of starting copies of the program.
///
/// # Async runtimes
///
/// Under `#[tokio::main]` (or any runtime's attribute), the constructor runs before `main`,
/// so before the runtime starts: a worker never builds the runtime and runs each task on its
/// main thread, outside any runtime. A task that needs one builds its own (for example a
/// current-thread runtime in an [`initializer`](crate::ProcessPoolBuilder::initializer) kept in a
/// static). An `init()` call inside the async `main` stays a no-op.
///
/// # MPI
///
/// With the cargo feature `mpi`, `init` also recognises a launch by `mpirun` or `srun`: it
/// initialises MPI, returns on rank 0, and turns every other rank into a worker of
/// `MpiPool`, which exits once rank 0 drops its pool or exits. Outside such a launch it
/// touches no MPI at all.
///
/// # Panics
///
/// Never. A panic inside a task becomes [`Error::Panicked`](crate::Error::Panicked) in the parent, and the worker keeps
/// serving.
///
/// ```standalone_crate
/// fn square(x: u64) -> u64 { x * x }
///
/// fn main() -> Result<(), parexec::Error> {
///     parexec::init(); // optional; returns at once in the parent
///     let pool = parexec::ProcessPool::new(1)?;
///     assert_eq!(pool.submit(square, 9).result()?, 81);
///     Ok(())
/// }
/// ```
pub fn init() {
    crate::process::serve_if_worker();
    // After the process-pool check: a worker process of an MPI rank inherits the launcher's
    // variables, but must serve its parent, not join the MPI job.
    #[cfg(feature = "mpi")]
    crate::mpi::init();
}
