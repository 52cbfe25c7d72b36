//! Live resize of a process pool: slots `0..target` are in use. Growing adds slots (or
//! brings back ones on their way out) and starts a supervisor for each slot that has none;
//! shrinking lowers the target, so the slots past it take no new task, and each one's
//! supervisor closes its worker's socket once the worker's tasks are done, reaps the worker
//! and exits.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::schedule::Slot;
use super::supervisor::{Shared, Writer};
use crate::Error;

impl Shared {
    /// Starts the supervisor thread of `slot`, which must already count as supervised. With
    /// `report`, it reports whether its first worker shook hands.
    pub(super) fn spawn_supervisor(
        self: &Arc<Self>,
        slot: usize,
        report: Option<Sender<Result<(), Error>>>,
    ) -> Result<JoinHandle<()>, Error> {
        let supervisor = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("parexec-process-{slot}"))
            .spawn(move || supervisor.supervise(slot, report))
            .map_err(Error::from)
    }

    pub(crate) fn set_workers(self: &Arc<Self>, workers: usize) -> Result<(), Error> {
        if workers == 0 {
            return Err(Error::InvalidArgument(
                "a process pool needs at least one worker".into(),
            ));
        }
        // Held throughout: resizes are serialized, and `shutdown`, which takes the handles
        // under this lock after setting its flag, joins every supervisor started here.
        let mut threads = self.threads.lock();
        threads.retain(|handle| !handle.is_finished());
        {
            // Writers first: a slot never exists without one.
            let mut writers = self.writers.write();
            let missing = workers.saturating_sub(writers.len());
            writers.extend((0..missing).map(|_| Writer::default()));
        }
        let (unsupervised, retiring, started) = {
            let mut state = self.state.lock();
            if state.shutdown {
                return Err(Error::Shutdown);
            }
            let missing = workers.saturating_sub(state.slots.len());
            state.slots.extend((0..missing).map(|_| Slot::default()));
            let retiring = workers..state.target.max(workers);
            state.target = workers;
            let mut unsupervised = Vec::new();
            for (slot, s) in state.slots.iter_mut().enumerate().take(workers) {
                if !s.supervised {
                    s.supervised = true;
                    unsupervised.push(slot);
                }
            }
            state.live += unsupervised.len();
            // Lazy supervisors of slots out of use stop waiting for the first task.
            self.wake.notify_all();
            (unsupervised, retiring, state.started)
        };
        retiring.for_each(|slot| self.close_if_done(slot));
        let (report, reports) = crossbeam_channel::bounded(unsupervised.len());
        let mut outcome = Ok(());
        let mut reporting = 0;
        for slot in unsupervised {
            // A started pool's new workers shake hands before this returns, as in `build`.
            match self.spawn_supervisor(slot, started.then(|| report.clone())) {
                Ok(handle) => {
                    threads.push(handle);
                    reporting += usize::from(started);
                }
                Err(e) => {
                    self.abandon_slot(slot);
                    outcome = outcome.and(Err(e));
                }
            }
        }
        drop(report);
        for report in reports.iter().take(reporting) {
            outcome = outcome.and(report);
        }
        outcome
    }

    /// Un-counts a slot whose supervisor could not be started.
    fn abandon_slot(&self, slot: usize) {
        let mut state = self.state.lock();
        state.slots[slot].supervised = false;
        state.live -= 1;
    }
}
