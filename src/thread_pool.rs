//! The thread pool: a fixed set of worker threads fed from one lock-free injector queue.
//!
//! # Design
//!
//! * **Queue.** Every submission is pushed to a `crossbeam_deque::Injector`; idle workers steal
//!   from it. A job is one boxed closure that owns the task and its [`Promise`]; it starts the
//!   promise (skipping cancelled tasks), runs the task under `catch_unwind`, and resolves.
//! * **Parking.** A thread wake-up costs ~80 µs on this class of machine, far more than a task,
//!   so a submitter only touches the sleep lock when a worker is actually asleep, and an idle
//!   worker spins briefly before it sleeps. The sleeper count and the queue are checked in the
//!   Dekker pattern (each side writes, `SeqCst` fence, reads the other) so a wake-up is never
//!   lost: either the worker sees the job or the submitter sees the sleeper. The waker takes
//!   the sleeper off the count, so each sleeper costs one futex call, not one per push.
//! * **Clock reads.** A clock read costs about as much as a no-op task on a VM, so the hot path
//!   avoids them: busy time is timed per busy stretch, queue wait on every eighth task.
//! * **Helping.** A worker that blocks on a future (a task waiting for a task it submitted, or
//!   a [`Scope`] opened on a worker) runs queued jobs of its own pool meanwhile, so nested
//!   waiting cannot starve a small pool.
//! * **Map chunks.** A chunk's job sits in a slot that a worker or the map's consumer empties,
//!   whichever comes first: a consumer about to wait for a short queued chunk runs it itself.
//! * **Scopes.** [`ThreadPool::scope`] erases the lifetime of borrowed tasks, the thread pool's
//!   one piece of `unsafe`; the scope does not return until every task it spawned has run (or been
//!   discarded) and dropped its captures, exactly as `std::thread::scope` does.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use crossbeam_utils::CachePadded;
use parking_lot::{Condvar, Mutex};

use crate::executor::sealed::Sealed;
use crate::future::{EmbedsState, Promise, Shared, promise};
use crate::in_place::Slots;
use crate::map::{Chunk, ChunkDispatch, DispatchInto, Dispatched};
use crate::{Error, Executor, ExecutorKind, Future, Map, Payload, Stats};

/// A unit of work in the queue. It receives the counters of the thread that runs it.
/// `'task` is `'static` except for scoped tasks, whose lifetime is erased on submission.
type JobFor<'task> = Box<dyn FnOnce(&WorkerCounters) + Send + 'task>;

/// What the queue holds.
enum Job {
    /// A task from [`ThreadPool::submit`], sharing one allocation with its future's state.
    Task(QueuedTask),
    /// A boxed job: a map chunk, or a scoped task whose lifetime was erased.
    Boxed(JobFor<'static>),
}

impl Job {
    fn run(self, counters: &WorkerCounters) {
        match self {
            Job::Task(task) => task.run(counters),
            Job::Boxed(job) => job(counters),
        }
    }
}

/// A submitted task and its future's state in one allocation: the queue and the future each
/// hold an `Arc` of it, instead of a boxed job owning a promise of a separately allocated
/// state. At no-op task sizes the allocator is the largest cost of a submission.
struct TaskCell<T, F> {
    state: Shared<T>,
    /// Taken by the one run of the task, or dropped unrun.
    task: Mutex<Option<F>>,
    /// The submission time of a task sampled for queue wait.
    enqueued: Option<Instant>,
}

impl<T: Send, F: Send> EmbedsState<T> for TaskCell<T, F> {
    fn state(&self) -> &Shared<T> {
        &self.state
    }
}

/// A [`TaskCell`] as the queue sees it, without its types.
trait Runnable: Send + Sync {
    /// Runs the task unless its future was cancelled, and resolves the future.
    fn run(&self, counters: &WorkerCounters);
    /// Drops a task that will never run and resolves its future as cancelled.
    fn abandon(&self);
}

impl<T, F> Runnable for TaskCell<T, F>
where
    T: Send,
    F: FnOnce() -> T + Send,
{
    fn run(&self, counters: &WorkerCounters) {
        let task = self.task.lock().take();
        // `start` fails when the future was cancelled while queued: the task is dropped unrun.
        let Some(task) = task.filter(|_| self.state.start()) else {
            WorkerCounters::add(&counters.cancelled, 1);
            return;
        };
        if let Some(enqueued) = self.enqueued {
            counters.sample_queue_wait(enqueued);
        }
        let outcome = catch_unwind(AssertUnwindSafe(task)).map_err(Error::from_panic);
        counters.count_outcome(outcome.is_ok());
        self.state.resolve(outcome);
    }

    fn abandon(&self) {
        drop(self.task.lock().take());
        self.state.abandon();
    }
}

/// The queue's handle on a [`TaskCell`]: dropping it unrun (a cancelling shutdown) abandons
/// the task, as dropping a boxed job drops its promise.
struct QueuedTask(Option<Arc<dyn Runnable>>);

impl QueuedTask {
    fn run(mut self, counters: &WorkerCounters) {
        if let Some(task) = self.0.take() {
            task.run(counters);
        }
    }
}

impl Drop for QueuedTask {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abandon();
        }
    }
}

/// Tasks after which a busy worker folds its running busy interval into the counters, so
/// `stats` stays current under continuous load.
const BUSY_FLUSH_TASKS: u32 = 64;

/// One task in this many is timestamped on submission to measure queue wait, and the total
/// is scaled to every task that started. A clock read costs ~50 ns on a VM, as much as the
/// rest of submitting a no-op task, and the estimate converges within a few hundred tasks.
const QUEUE_WAIT_SAMPLING: u64 = 8;

/// How long an idle worker keeps looking for work before it parks.
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(10);

/// The least per-chunk cost the automatic chunk size assumes. A hot queue costs ~2 µs per
/// chunk, but a map whose workers park between chunks also pays a wake-up (~50-100 µs here),
/// and chunks under ~100 µs were measured to lose most of the speedup on 2 cores.
const MIN_CHUNK_OVERHEAD: Duration = Duration::from_micros(10);

#[derive(Default)]
struct WorkerCounters {
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    busy_nanos: AtomicU64,
    /// Queue wait of the sampled tasks that started; see [`QUEUE_WAIT_SAMPLING`].
    queue_wait_nanos: AtomicU64,
    queue_wait_samples: AtomicU64,
}

impl WorkerCounters {
    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    fn add_busy(&self, busy: Duration) {
        Self::add(&self.busy_nanos, nanos(busy));
    }

    fn sample_queue_wait(&self, enqueued: Instant) {
        Self::add(&self.queue_wait_nanos, nanos(enqueued.elapsed()));
        Self::add(&self.queue_wait_samples, 1);
    }

    fn count_outcome(&self, ok: bool) {
        Self::add(if ok { &self.completed } else { &self.failed }, 1);
    }
}

/// Runs a job outside a worker's loop (a helping or consuming thread), timing it alone.
fn run_timed(job: Job, counters: &WorkerCounters) {
    let started = Instant::now();
    job.run(counters);
    counters.add_busy(started.elapsed());
}

/// A worker's busy time without a clock read per task: a busy stretch runs from the start of
/// its first task until the worker finds the queue empty, so only those two moments (and a
/// flush every [`BUSY_FLUSH_TASKS`] tasks) read the clock. A read costs ~50 ns on a VM, as
/// much as running a no-op task.
#[derive(Default)]
struct BusyTimer {
    since: Option<Instant>,
    tasks: u32,
}

impl BusyTimer {
    fn task_starts(&mut self, counters: &WorkerCounters) {
        match self.since {
            Some(since) if self.tasks >= BUSY_FLUSH_TASKS => {
                let now = Instant::now();
                counters.add_busy(now - since);
                self.since = Some(now);
                self.tasks = 0;
            }
            Some(_) => {}
            None => self.since = Some(Instant::now()),
        }
        self.tasks += 1;
    }

    fn idle(&mut self, counters: &WorkerCounters) {
        if let Some(since) = self.since.take() {
            counters.add_busy(since.elapsed());
            self.tasks = 0;
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

struct PoolShared {
    injector: Injector<Job>,
    shutdown: AtomicBool,
    /// Set once every worker has been joined; later jobs can only be drained.
    workers_exited: AtomicBool,
    /// Workers parked and not yet woken, changed only under `sleep_lock`. A waker takes the
    /// worker it wakes off the count, so a burst of submissions wakes each sleeper once rather
    /// than making every push a futex call while the woken worker is still being scheduled.
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
    submitted: CachePadded<AtomicU64>,
    /// One set per worker, plus one for jobs run by helping threads and shutdown drains.
    counters: Box<[CachePadded<WorkerCounters>]>,
}

impl PoolShared {
    /// Counts a task as submitted and returns its submission time if it is sampled for queue
    /// wait. Every task job is admitted once, before it is pushed.
    fn admit(&self) -> Option<Instant> {
        let ticket = self.submitted.fetch_add(1, Ordering::Relaxed);
        (ticket % QUEUE_WAIT_SAMPLING == 0).then(Instant::now)
    }

    fn push(&self, job: Job) {
        self.injector.push(job);
        fence(Ordering::SeqCst);
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            self.wake_one();
        }
        // A submission that raced `shutdown` past its final drain must not wait forever:
        // either that drain sees this job or this check sees that the workers are gone.
        if self.workers_exited.load(Ordering::SeqCst) {
            self.drain_unrun();
        }
    }

    fn steal(&self) -> Option<Job> {
        loop {
            match self.injector.steal() {
                Steal::Success(job) => return Some(job),
                Steal::Empty => return None,
                Steal::Retry => {}
            }
        }
    }

    fn overflow_counters(&self) -> &WorkerCounters {
        self.counters
            .last()
            .expect("the counters include the overflow set")
    }

    /// Parks the calling worker until there may be work or the pool shuts down.
    fn park(&self) {
        let mut guard = self.sleep_lock.lock();
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.injector.is_empty() && !self.shutdown.load(Ordering::SeqCst) {
            // parking_lot's condvar has no spurious wake-ups: whoever wakes this worker has
            // already taken it off the count.
            self.wake.wait(&mut guard);
        } else {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn wake_one(&self) {
        let _guard = self.sleep_lock.lock();
        if self.sleepers.load(Ordering::SeqCst) > 0 && self.wake.notify_one() {
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Resolves every queued, unstarted job as cancelled (dropping a job abandons its task).
    fn drain_unrun(&self) {
        let counters = self.overflow_counters();
        while let Some(job) = self.steal() {
            drop(job);
            WorkerCounters::add(&counters.cancelled, 1);
        }
    }

    fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _guard = self.sleep_lock.lock();
        let woken = self.wake.notify_all();
        self.sleepers.fetch_sub(woken, Ordering::SeqCst);
    }

    fn stats(&self) -> Stats {
        let sum = |field: fn(&WorkerCounters) -> &AtomicU64| -> u64 {
            self.counters
                .iter()
                .map(|c| field(c).load(Ordering::Relaxed))
                .sum()
        };
        let (completed, failed) = (sum(|c| &c.completed), sum(|c| &c.failed));
        let samples = sum(|c| &c.queue_wait_samples);
        let sampled_wait = sum(|c| &c.queue_wait_nanos) as f64;
        let queue_wait = if samples == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(
                (sampled_wait * (completed + failed) as f64 / samples as f64) as u64,
            )
        };
        Stats {
            submitted: self.submitted.load(Ordering::Relaxed),
            completed,
            failed,
            cancelled: sum(|c| &c.cancelled),
            busy: Duration::from_nanos(sum(|c| &c.busy_nanos)),
            queue_wait,
            ..Stats::default()
        }
    }
}

thread_local! {
    /// The pool this thread works for, if it is a worker: lets blocking waits help.
    static CURRENT_WORKER: RefCell<Option<(Arc<PoolShared>, usize)>> = const { RefCell::new(None) };
}

/// While `done()` is false and the deadline has not passed, runs queued jobs of the pool the
/// calling thread works for. Returns when there is nothing left to help with; a no-op on
/// threads that are not pool workers.
pub(crate) fn help_until(done: impl Fn() -> bool, deadline: Option<Instant>) {
    let Some((shared, index)) = CURRENT_WORKER.with(|w| w.borrow().clone()) else {
        return;
    };
    while !done() && deadline.is_none_or(|d| Instant::now() < d) {
        match shared.steal() {
            Some(job) => run_timed(job, &shared.counters[index]),
            None => return,
        }
    }
}

/// Configures a [`ThreadPool`]. Obtained from [`ThreadPool::builder`].
///
/// ```
/// use parexec::ThreadPool;
///
/// let pool = ThreadPool::builder()
///     .workers(2)
///     .thread_name("resize")
///     .stack_size(4 << 20)
///     .initializer(|worker| assert!(worker < 2))
///     .build()?;
/// assert_eq!(pool.workers(), 2);
/// # Ok::<(), parexec::Error>(())
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct ThreadPoolBuilder {
    workers: Option<usize>,
    thread_name: String,
    stack_size: Option<usize>,
    initializer: Option<Arc<dyn Fn(usize) + Send + Sync>>,
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("workers", &self.workers)
            .field("thread_name", &self.thread_name)
            .field("stack_size", &self.stack_size)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}

/// The number of cores this process may actually use (affinity mask and cgroup quota
/// included), and 1 if that cannot be determined.
pub(crate) fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl ThreadPoolBuilder {
    /// The number of worker threads. Defaults to the cores this process may use (its
    /// affinity mask and cgroup CPU quota included).
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().workers(3).build()?;
    /// assert_eq!(pool.workers(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// The prefix of the worker threads' names; worker `i` is named `"{prefix}-{i}"`.
    /// Defaults to `"parexec"`.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().workers(1).thread_name("io").build()?;
    /// let name = pool.submit(|| std::thread::current().name().map(String::from)).result()?;
    /// assert_eq!(name.as_deref(), Some("io-0"));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.thread_name = prefix.into();
        self
    }

    /// The stack size of each worker thread in bytes. Defaults to the standard library's.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().workers(1).stack_size(16 << 20).build()?;
    /// // A 4 MiB frame: more than the default 2 MiB stack holds.
    /// let deep = pool.submit(|| {
    ///     let frame = [1_u8; 4 << 20];
    ///     std::hint::black_box(&frame).len()
    /// });
    /// assert_eq!(deep.result()?, 4 << 20);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Self {
        self.stack_size = Some(bytes);
        self
    }

    /// A function each worker runs once, with its index, before it takes any task.
    /// [`build`](ThreadPoolBuilder::build) waits until every worker has run it. If it panics
    /// on any worker, `build` fails with [`Error::Initializer`].
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// static STARTED: AtomicUsize = AtomicUsize::new(0);
    /// let pool = parexec::ThreadPool::builder()
    ///     .workers(2)
    ///     .initializer(|_worker| { STARTED.fetch_add(1, Ordering::SeqCst); })
    ///     .build()?;
    /// assert_eq!(STARTED.load(Ordering::SeqCst), 2);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn initializer(mut self, init: impl Fn(usize) + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(init));
        self
    }

    /// Starts the worker threads.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers, [`Error::Io`] if a thread cannot be
    /// spawned, [`Error::Initializer`] if the initializer panics on any worker (the threads
    /// already started are joined before this returns).
    ///
    /// ```
    /// let err = parexec::ThreadPool::builder().workers(0).build().unwrap_err();
    /// assert!(matches!(err, parexec::Error::InvalidArgument(_)));
    /// ```
    pub fn build(self) -> Result<ThreadPool, Error> {
        let workers = self.workers.unwrap_or_else(available_cores);
        if workers == 0 {
            return Err(Error::InvalidArgument(
                "a thread pool needs at least one worker".into(),
            ));
        }
        crate::panic_location::install_hook();
        let shared = Arc::new(PoolShared {
            injector: Injector::new(),
            shutdown: AtomicBool::new(false),
            workers_exited: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
            submitted: CachePadded::new(AtomicU64::new(0)),
            counters: (0..=workers).map(|_| CachePadded::default()).collect(),
        });
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), Error>>(workers);
        let pool = ThreadPool {
            shared,
            threads: Mutex::new(Vec::with_capacity(workers)),
            workers,
        };
        for index in 0..workers {
            let mut thread =
                std::thread::Builder::new().name(format!("{}-{index}", self.thread_name));
            if let Some(bytes) = self.stack_size {
                thread = thread.stack_size(bytes);
            }
            let shared = Arc::clone(&pool.shared);
            let init = self.initializer.clone();
            let ready = ready_tx.clone();
            let handle = thread.spawn(move || {
                let init_outcome = match init {
                    Some(init) => catch_unwind(AssertUnwindSafe(|| init(index)))
                        .map_err(|p| Error::Initializer(Error::from_panic(p).to_string())),
                    None => Ok(()),
                };
                let initialized = init_outcome.is_ok();
                let _ = ready.send(init_outcome);
                if initialized {
                    worker_loop(shared, index);
                }
            })?;
            pool.threads.lock().push(handle);
        }
        drop(ready_tx);
        for _ in 0..workers {
            // A worker that dies before reporting closes its sender; count that as a failure too.
            let report = ready_rx
                .recv()
                .unwrap_or_else(|_| Err(Error::Initializer("a worker thread exited".into())));
            report?;
        }
        Ok(pool)
    }
}

fn worker_loop(shared: Arc<PoolShared>, index: usize) {
    CURRENT_WORKER.with(|w| *w.borrow_mut() = Some((Arc::clone(&shared), index)));
    let counters = &shared.counters[index];
    let mut busy = BusyTimer::default();
    loop {
        if let Some(job) = shared.steal() {
            busy.task_starts(counters);
            job.run(counters);
            continue;
        }
        busy.idle(counters);
        if shared.shutdown.load(Ordering::SeqCst) {
            // Re-check after seeing the flag: a job pushed just before shutdown still runs.
            match shared.steal() {
                Some(job) => run_timed(job, counters),
                None => break,
            }
            continue;
        }
        let idle_since = Instant::now();
        while shared.injector.is_empty() && idle_since.elapsed() < SPIN_BEFORE_PARK {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        if shared.injector.is_empty() {
            shared.park();
        }
    }
    CURRENT_WORKER.with(|w| w.borrow_mut().take());
}

/// A pool of worker threads that runs closures and returns a [`Future`] for each.
///
/// # Panics in tasks
///
/// A panicking task resolves its future to [`Error::Panicked`] with the message and location;
/// the worker thread survives and the pool keeps serving. Nothing aborts the process.
///
/// # Lifecycle
///
/// [`shutdown`](ThreadPool::shutdown) finishes queued work and joins the threads;
/// [`shutdown_cancel`](ThreadPool::shutdown_cancel) cancels whatever has not started. Dropping
/// the pool is `shutdown`: no thread outlives it. A submission after shutdown returns a future
/// resolved to [`Error::Shutdown`].
///
/// ```
/// use parexec::{ThreadPool, as_completed};
///
/// let pool = ThreadPool::new(2)?;
/// let futures: Vec<_> = (1..=3_u64).map(|n| pool.submit(move || n * 10)).collect();
/// let mut total = 0;
/// for done in as_completed(futures) {
///     total += done.result()?;
/// }
/// assert_eq!(total, 60);
/// # Ok::<(), parexec::Error>(())
/// ```
///
/// A task must be `Send`; capturing something that is not is a compile error:
///
/// ```compile_fail
/// let pool = parexec::ThreadPool::new(1).unwrap();
/// let not_send = std::rc::Rc::new(1);
/// pool.submit(move || *not_send + 1);
/// ```
pub struct ThreadPool {
    shared: Arc<PoolShared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    workers: usize,
}

impl ThreadPool {
    /// A pool with `workers` threads and default settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers; [`Error::Io`] if threads cannot be spawned.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(4)?;
    /// assert_eq!(pool.workers(), 4);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn new(workers: usize) -> Result<Self, Error> {
        Self::builder().workers(workers).build()
    }

    /// A builder for worker count, thread names, stack size and a per-worker initializer.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::builder().thread_name("io").build()?;
    /// assert!(pool.workers() >= 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            workers: None,
            thread_name: "parexec".into(),
            stack_size: None,
            initializer: None,
        }
    }

    /// Queues `task` and returns the future of its result.
    ///
    /// A panic in `task` resolves the future to [`Error::Panicked`]; after shutdown the
    /// future is already resolved to [`Error::Shutdown`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let data = vec![1, 2, 3];
    /// let sum = pool.submit(move || data.iter().sum::<i32>());
    /// assert_eq!(sum.result()?, 6);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    #[must_use = "dropping the future does not cancel the task, but loses its result and any panic"]
    pub fn submit<F, T>(&self, task: F) -> Future<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        if self.shared.shutdown.load(Ordering::Acquire) {
            return Future::ready(Err(Error::Shutdown));
        }
        let cell = Arc::new(TaskCell {
            state: Shared::new(),
            task: Mutex::new(Some(task)),
            enqueued: self.shared.admit(),
        });
        let future = Future::embedded(Arc::clone(&cell) as Arc<dyn EmbedsState<T>>);
        self.shared.push(Job::Task(QueuedTask(Some(cell))));
        future
    }

    /// Applies `f` to every item on the pool: a lazy iterator of `Result<R, Error>` in input
    /// order, with a bounded number of chunks in flight. See [`Map`] for the chunk size, the
    /// window and the unordered variant.
    ///
    /// A panic in `f` fails only the item it happened on, as [`Error::Panicked`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let offset = 100;
    /// let out: Vec<u64> = pool
    ///     .map(move |x: u64| x + offset, 0..5)
    ///     .collect::<Result<_, _>>()?;
    /// assert_eq!(out, [100, 101, 102, 103, 104]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn map<A, R, F, I>(&self, f: F, items: I) -> Map<'_, I::IntoIter, R>
    where
        F: Fn(A) -> R + Send + Sync + 'static,
        A: Send + 'static,
        R: Send + 'static,
        I: IntoIterator<Item = A>,
    {
        Map::new(
            items.into_iter(),
            Box::new(ThreadChunks {
                pool: self,
                f: Arc::new(f),
            }),
        )
    }

    /// Runs `body` with a [`Scope`] whose tasks may borrow from the caller's stack, and
    /// returns once every task spawned in it has finished.
    ///
    /// A panic in a task resolves that task's future to [`Error::Panicked`]; a panic in
    /// `body` itself is re-raised after all tasks have finished.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of `body`.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(2)?;
    /// let words = vec!["alpha".to_string(), "beta".to_string()];
    /// let total = pool.scope(|s| {
    ///     let lengths: Vec<_> = words.iter().map(|w| s.submit(move || w.len())).collect();
    ///     lengths.into_iter().map(|f| f.result().unwrap()).sum::<usize>()
    /// });
    /// assert_eq!(total, 9);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    ///
    /// A scoped task may borrow only what outlives the scope:
    ///
    /// ```compile_fail
    /// let pool = parexec::ThreadPool::new(1).unwrap();
    /// pool.scope(|s| {
    ///     let inner = 5;
    ///     s.submit(|| inner + 1);
    /// });
    /// ```
    pub fn scope<'env, F, T>(&self, body: F) -> T
    where
        F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
    {
        let scope = Scope {
            pool: self,
            state: Arc::new(ScopeState {
                running: Mutex::new(0),
                all_done: Condvar::new(),
            }),
            scope: PhantomData,
            env: PhantomData,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&scope)));
        scope.wait_all();
        match outcome {
            Ok(value) => value,
            Err(payload) => std::panic::resume_unwind(payload),
        }
    }

    /// The number of worker threads.
    ///
    /// ```
    /// assert_eq!(parexec::ThreadPool::new(3)?.workers(), 3);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Task counts and timings so far; see [`Stats`].
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let _ = pool.submit(|| panic!("counted")).result();
    /// pool.shutdown();
    /// assert_eq!(pool.stats().failed, 1);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Stops accepting tasks, runs everything already queued, and joins the workers.
    /// Idempotent. Called from one of this pool's own tasks, it joins every other worker and
    /// leaves the calling one to finish its task and exit.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let queued = pool.submit(|| 7);
    /// pool.shutdown();
    /// assert_eq!(queued.result()?, 7);
    /// assert!(matches!(pool.submit(|| 8).result(), Err(parexec::Error::Shutdown)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn shutdown(&self) {
        self.shared.begin_shutdown();
        self.join_workers();
        self.shared.workers_exited.store(true, Ordering::SeqCst);
        self.shared.drain_unrun();
    }

    /// Like [`shutdown`](ThreadPool::shutdown), but cancels every task that has not started;
    /// their futures resolve to [`Error::Cancelled`]. Running tasks finish.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let (release, gate) = std::sync::mpsc::channel::<()>();
    /// let (started, wait_start) = std::sync::mpsc::channel();
    /// let running = pool.submit(move || { started.send(()).unwrap(); gate.recv().ok() });
    /// let queued = pool.submit(|| 2);
    /// wait_start.recv().unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| pool.shutdown_cancel());
    ///     while !queued.is_done() { std::thread::yield_now(); }
    ///     release.send(()).unwrap();
    /// });
    /// assert!(running.result().is_ok());
    /// assert!(matches!(queued.result(), Err(parexec::Error::Cancelled)));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn shutdown_cancel(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.drain_unrun();
        self.shutdown();
    }

    fn join_workers(&self) {
        let me = std::thread::current().id();
        let handles = std::mem::take(&mut *self.threads.lock());
        for handle in handles {
            if handle.thread().id() != me {
                // A worker never panics out of its loop: tasks and initializers are caught.
                let _ = handle.join();
            }
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("workers", &self.workers)
            .field("shutdown", &self.shared.shutdown.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Sealed for ThreadPool {}

impl Executor for ThreadPool {
    fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        ThreadPool::submit(self, move || f(arg))
    }

    fn map<A, R, I>(&self, f: fn(A) -> R, items: I) -> Map<'_, I::IntoIter, R>
    where
        A: Payload,
        R: Payload,
        I: IntoIterator<Item = A>,
    {
        ThreadPool::map(self, f, items)
    }

    fn workers(&self) -> usize {
        self.workers
    }

    fn stats(&self) -> Stats {
        ThreadPool::stats(self)
    }

    fn kind(&self) -> ExecutorKind {
        ExecutorKind::Threads
    }

    fn shutdown(&self) {
        ThreadPool::shutdown(self);
    }
}

/// Sends map chunks to the pool as jobs that share one `f`.
struct ThreadChunks<'p, F> {
    pool: &'p ThreadPool,
    f: Arc<F>,
}

impl<F> ThreadChunks<'_, F> {
    /// Queues `run(f)` as a chunk's job.
    fn dispatch_with<R: Send + 'static>(
        &self,
        run: impl FnOnce(&F) -> Chunk<R> + Send + 'static,
    ) -> Dispatched<R>
    where
        F: Send + Sync + 'static,
    {
        let shared = &self.pool.shared;
        if shared.shutdown.load(Ordering::Acquire) {
            return Dispatched::ready(Err(Error::Shutdown));
        }
        let f = Arc::clone(&self.f);
        let (promise, future) = promise();
        // Whoever takes the job out of the slot first runs it: a worker, or the consumer.
        let enqueued = shared.admit();
        let slot = Arc::new(Mutex::new(Some(task_job(
            move || Ok(run(&f)),
            promise,
            enqueued,
        ))));
        let queued = Arc::clone(&slot);
        shared.push(Job::Boxed(Box::new(move |counters: &WorkerCounters| {
            if let Some(job) = queued.lock().take() {
                job(counters);
            }
        })));
        let shared = Arc::clone(shared);
        Dispatched {
            future,
            run_here: Some(Box::new(move || {
                if let Some(job) = slot.lock().take() {
                    run_timed(Job::Boxed(job), shared.overflow_counters());
                }
            })),
        }
    }
}

impl<A, R, F> ChunkDispatch<A, R> for ThreadChunks<'_, F>
where
    F: Fn(A) -> R + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    fn dispatch(&self, items: Vec<A>) -> Dispatched<R> {
        self.dispatch_with(move |f| Chunk::run(f, items))
    }

    fn workers(&self) -> usize {
        self.pool.workers
    }

    fn chunk_overhead(&self) -> Duration {
        crate::planner::calibrated_chunk_overhead(ExecutorKind::Threads)
            .map_or(MIN_CHUNK_OVERHEAD, |measured| {
                measured.max(MIN_CHUNK_OVERHEAD)
            })
    }

    fn in_place(&self) -> Option<&dyn DispatchInto<A, R>> {
        Some(self)
    }
}

impl<A, R, F> DispatchInto<A, R> for ThreadChunks<'_, F>
where
    F: Fn(A) -> R + Send + Sync + 'static,
    A: Send + 'static,
    R: Send + 'static,
{
    fn dispatch_into(&self, items: Vec<A>, slots: Slots<R>) -> Dispatched<R> {
        self.dispatch_with(move |f| Chunk::run_into(f, items, slots))
    }
}

struct ScopeState {
    running: Mutex<usize>,
    all_done: Condvar,
}

/// Counts a scoped task as finished when dropped, after the task and its captures are gone,
/// whether the task ran or was discarded unrun.
struct ScopeTicket {
    state: Arc<ScopeState>,
}

impl Drop for ScopeTicket {
    fn drop(&mut self) {
        let mut running = self.state.running.lock();
        *running -= 1;
        if *running == 0 {
            self.state.all_done.notify_all();
        }
    }
}

/// A scope for tasks that borrow from the enclosing stack frame; see [`ThreadPool::scope`].
///
/// ```
/// let pool = parexec::ThreadPool::new(2)?;
/// let mut counts = [0_usize; 2];
/// let text = "one two three";
/// pool.scope(|s| {
///     let (a, b) = counts.split_at_mut(1);
///     s.submit(|| a[0] = text.split(' ').count());
///     s.submit(|| b[0] = text.len());
/// });
/// assert_eq!(counts, [3, 13]);
/// # Ok::<(), parexec::Error>(())
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    pool: &'scope ThreadPool,
    state: Arc<ScopeState>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// Queues `task`, which may borrow anything that outlives the scope, and returns the
    /// future of its result. A panic in `task` resolves the future to [`Error::Panicked`].
    /// The future may be ignored: the scope waits for the task either way.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// let data = [1, 2, 3];
    /// let doubled = pool.scope(|s| s.submit(|| data.map(|x| x * 2)).result());
    /// assert_eq!(doubled?, [2, 4, 6]);
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn submit<F, T>(&'scope self, task: F) -> Future<T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        if self.pool.shared.shutdown.load(Ordering::Acquire) {
            return Future::ready(Err(Error::Shutdown));
        }
        *self.state.running.lock() += 1;
        let ticket = ScopeTicket {
            state: Arc::clone(&self.state),
        };
        let (promise, future) = promise();
        let enqueued = self.pool.shared.admit();
        let scoped = task_job(move || Ok(task()), promise, enqueued);
        let with_ticket: JobFor<'scope> = Box::new(move |counters: &WorkerCounters| {
            scoped(counters);
            drop(ticket);
        });
        // SAFETY: the job borrows data that lives for 'scope. `ThreadPool::scope` does not
        // return (not even by unwinding: the body runs under `catch_unwind`) before
        // `wait_all` has seen every `ScopeTicket` dropped, and a ticket is dropped only after
        // the job that owns it has been consumed or dropped, together with everything it
        // captured. So no job outlives 'scope, and extending its lifetime to 'static for the
        // queue is never observable. Only the lifetime changes; the layout is identical.
        let job = unsafe { std::mem::transmute::<JobFor<'scope>, JobFor<'static>>(with_ticket) };
        self.pool.shared.push(Job::Boxed(job));
        future
    }

    fn wait_all(&self) {
        help_until(|| *self.state.running.lock() == 0, None);
        let mut running = self.state.running.lock();
        while *running > 0 {
            self.state.all_done.wait(&mut running);
        }
    }
}

/// Builds the closure that runs `task` as a job: start it (or skip it if cancelled), run it
/// under `catch_unwind`, count it, resolve its future. `'task` is `'static` except in scopes.
/// `enqueued` is the submission time of a task sampled for queue wait.
fn task_job<'task, T, F>(task: F, promise: Promise<T>, enqueued: Option<Instant>) -> JobFor<'task>
where
    F: FnOnce() -> Result<T, Error> + Send + 'task,
    T: Send + 'task,
{
    Box::new(move |counters: &WorkerCounters| {
        if !promise.start() {
            WorkerCounters::add(&counters.cancelled, 1);
            return;
        }
        if let Some(enqueued) = enqueued {
            counters.sample_queue_wait(enqueued);
        }
        let outcome = catch_unwind(AssertUnwindSafe(task))
            .unwrap_or_else(|payload| Err(Error::from_panic(payload)));
        counters.count_outcome(outcome.is_ok());
        promise.complete(outcome);
    })
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("running", &*self.state.running.lock())
            .finish_non_exhaustive()
    }
}
