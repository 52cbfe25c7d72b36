//! Starting worker threads, at build time and when [`ThreadPool::set_workers`] grows the
//! pool; and shrinking it. See `README.md` beside this file ("Live resize").

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::ThreadPool;
use super::registry::{Registry, worker_loop};
use crate::{Error, unwind};

/// Worker threads just started: their handles, how many passed the initializer and now
/// serve, and the first failure.
struct Started {
    handles: Vec<std::thread::JoinHandle<()>>,
    serving: usize,
    failure: Option<Error>,
}

/// What every worker thread of one pool is started with.
pub(super) struct Spawner {
    pub(super) thread_name: String,
    pub(super) stack_size: Option<usize>,
    pub(super) initializer: Option<Arc<dyn Fn(usize) + Send + Sync>>,
}

impl Spawner {
    /// Starts workers `first..first + count`. Without an initializer, each worker is enlisted
    /// here and the threads are not waited for: they start while the caller goes on (its first
    /// submissions wait in the queue, and a consumer runs the first map chunks itself), which
    /// keeps a thread's start-up latency out of a short job. With one, it waits until each
    /// worker has run it; a worker whose initializer fails exits, the others serve.
    fn start(&self, registry: &Arc<Registry>, first: usize, count: usize) -> Started {
        match &self.initializer {
            None => self.start_unwaited(registry, first, count),
            Some(init) => self.start_initialized(registry, init, first, count),
        }
    }

    fn thread(&self, index: usize) -> std::thread::Builder {
        let thread = std::thread::Builder::new().name(format!("{}-{index}", self.thread_name));
        match self.stack_size {
            Some(bytes) => thread.stack_size(bytes),
            None => thread,
        }
    }

    fn start_unwaited(&self, registry: &Arc<Registry>, first: usize, count: usize) -> Started {
        let mut handles = Vec::with_capacity(count);
        let mut failure = None;
        for index in first..first + count {
            // Enlisted before it exists, so `stats` counts it once `build` returns, and a
            // `shutdown` racing its start joins it like any other worker.
            let counters = registry.enlist_worker();
            let worker_registry = Arc::clone(registry);
            match self
                .thread(index)
                .spawn(move || worker_loop(worker_registry, counters))
            {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    registry.worker_left();
                    failure = Some(Error::from(e));
                    break;
                }
            }
        }
        Started {
            serving: handles.len(),
            handles,
            failure,
        }
    }

    fn start_initialized(
        &self,
        registry: &Arc<Registry>,
        init: &Arc<dyn Fn(usize) + Send + Sync>,
        first: usize,
        count: usize,
    ) -> Started {
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), Error>>(count);
        let mut handles = Vec::with_capacity(count);
        let mut failure = None;
        for index in first..first + count {
            let registry = Arc::clone(registry);
            let init = Arc::clone(init);
            let ready = ready_tx.clone();
            let spawned = self.thread(index).spawn(move || {
                let init_outcome = unwind::catch(|| init(index))
                    .map_err(|panic| Error::Initializer(Error::from(panic).to_string()));
                if init_outcome.is_ok() {
                    // Enlisted before reporting, so `stats` counts it once `build` returns.
                    let counters = registry.enlist_worker();
                    let _ = ready.send(init_outcome);
                    worker_loop(registry, counters);
                } else {
                    let _ = ready.send(init_outcome);
                }
            });
            match spawned {
                Ok(handle) => handles.push(handle),
                Err(e) => {
                    failure = Some(Error::from(e));
                    break;
                }
            }
        }
        drop(ready_tx);
        let mut serving = 0;
        for _ in 0..handles.len() {
            // A worker that dies before reporting closes its sender; a failure too.
            match ready_rx.recv() {
                Ok(Ok(())) => serving += 1,
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => {
                    failure = failure.or(Some(Error::Initializer("a worker thread exited".into())))
                }
            }
        }
        Started {
            handles,
            serving,
            failure,
        }
    }
}

impl ThreadPool {
    /// Starts the pool's first `workers` threads (from `build`).
    pub(super) fn start_workers(&self, workers: usize) -> Result<(), Error> {
        let started = self.spawner.start(&self.registry, 0, workers);
        self.threads.lock().extend(started.handles);
        self.next_index.store(workers, Ordering::SeqCst);
        started.failure.map_or(Ok(()), Err)
    }

    /// Changes the number of worker threads while the pool runs. Growing starts the new
    /// threads at once (and waits for their initializer, as `build` does); shrinking lets the
    /// surplus workers finish the task they are running and exit before taking another, so
    /// no task is lost or interrupted. A running [`map`](ThreadPool::map) keeps its in-flight
    /// window (sized when it started) and uses whatever workers the pool has.
    ///
    /// [`workers`](ThreadPool::workers) reports the new count at once;
    /// [`stats().workers`](crate::Stats::workers) the threads running right now, which
    /// converges to it as surplus workers finish their tasks.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for zero workers, [`Error::Shutdown`] after shutdown,
    /// [`Error::Io`] if a thread cannot be spawned and [`Error::Initializer`] if the
    /// initializer panics on a new worker; the workers started successfully keep serving and
    /// are counted.
    ///
    /// ```
    /// let pool = parexec::ThreadPool::new(1)?;
    /// pool.set_workers(3)?;
    /// assert_eq!((pool.workers(), pool.stats().workers), (3, 3));
    /// pool.set_workers(2)?;
    /// assert_eq!(pool.workers(), 2);
    /// assert_eq!(pool.map(|x: u32| x + 1, 0..100).count(), 100);
    /// assert!(matches!(pool.set_workers(0), Err(parexec::Error::InvalidArgument(_))));
    /// # Ok::<(), parexec::Error>(())
    /// ```
    pub fn set_workers(&self, workers: usize) -> Result<(), Error> {
        if workers == 0 {
            return Err(Error::InvalidArgument(
                "a thread pool needs at least one worker".into(),
            ));
        }
        // Held throughout: resizes are serialized, and `shutdown` joins the threads started
        // here (it takes the handles under this lock after setting its flag).
        let mut threads = self.threads.lock();
        if self.registry.is_shut_down() {
            return Err(Error::Shutdown);
        }
        threads.retain(|handle| !handle.is_finished());
        let current = self.workers.load(Ordering::SeqCst);
        if workers <= current {
            self.registry.retire(current - workers);
            self.workers.store(workers, Ordering::SeqCst);
            return Ok(());
        }
        // Workers still due to exit stay instead, before any thread is started.
        let kept = self.registry.unretire(workers - current);
        let missing = workers - current - kept;
        let first = self.next_index.fetch_add(missing, Ordering::SeqCst);
        let started = self.spawner.start(&self.registry, first, missing);
        threads.extend(started.handles);
        self.workers
            .store(current + kept + started.serving, Ordering::SeqCst);
        started.failure.map_or(Ok(()), Err)
    }
}
