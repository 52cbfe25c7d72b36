//! Sending tasks to workers: encode a task's frame once on the submitting thread, then write
//! it to an idle worker, or queue it for a supervisor to send later, several tasks in one write.

use std::io::{ErrorKind, IoSlice, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::code;
use super::job::{Batch, EncodedChunk, Single, Task, encode_chunk, guarded, merge};
use super::protocol::{self, ToWorker};
use super::supervisor::Shared;
use crate::future::promise;
use crate::map::Chunk;
use crate::{Error, Future, Payload};

impl Shared {
    pub(crate) fn submit<A: Payload, R: Payload>(&self, f: fn(A) -> R, arg: A) -> Future<R> {
        let began = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = self.task_frame::<A, R>(id, f, |out| {
            guarded("encode the argument", || {
                protocol::encode_into(std::slice::from_ref(&arg), out)
            })
        });
        match frame {
            Ok(frame) => {
                let (promise, future) = promise();
                self.dispatch(Task {
                    id,
                    frame: Arc::new(frame),
                    job: Box::new(Single(promise)),
                    started: false,
                    attempts: 0,
                    submitted: began,
                    encode: began.elapsed(),
                });
                future
            }
            Err(e) => {
                let mut state = self.state.lock();
                state.stats.submitted += 1;
                state.stats.failed += 1;
                drop(state);
                Future::ready(Err(e))
            }
        }
    }

    pub(crate) fn dispatch_chunk<A: Payload, R: Payload>(
        &self,
        f: fn(A) -> R,
        items: Vec<A>,
    ) -> Future<Chunk<R>> {
        let began = Instant::now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let EncodedChunk {
            frame,
            sent,
            rejected,
        } = encode_chunk(&items, |payload| self.task_frame::<A, R>(id, f, payload));
        let frame = match frame {
            Ok(frame) if sent > 0 => frame,
            other => {
                let mut state = self.state.lock();
                state.stats.submitted += 1;
                let outcome = match other {
                    Ok(_) => {
                        state.stats.completed += 1;
                        let results = merge(std::iter::empty::<Result<R, Error>>(), rejected);
                        Ok(Chunk::from_results(results, Duration::ZERO))
                    }
                    Err(e) => {
                        state.stats.failed += 1;
                        Err(e)
                    }
                };
                return Future::ready(outcome);
            }
        };
        let (promise, future) = promise();
        self.dispatch(Task {
            id,
            frame: Arc::new(frame),
            job: Box::new(Batch {
                promise,
                sent,
                rejected,
            }),
            started: false,
            attempts: 0,
            submitted: began,
            encode: began.elapsed(),
        });
        future
    }

    fn task_frame<A: Payload, R: Payload>(
        &self,
        id: u64,
        f: fn(A) -> R,
        payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
    ) -> Result<Vec<u8>, Error> {
        let header = ToWorker::Task {
            id,
            trampoline: code::trampoline_offset::<A, R>(),
            func: code::offset_of(f as usize),
        };
        protocol::encode_frame(&header, self.config.spawn.max_frame, payload)
    }

    /// Writes the task to an idle worker, or queues it. A busy worker's supervisor takes
    /// queued tasks when its replies come back, as many as its window holds, in one write:
    /// under a burst of submits that is one write per batch of tasks instead of one per task,
    /// and a worker that is busy loses nothing by waiting for the batch.
    fn dispatch(&self, task: Task) {
        let max_tasks = self.config.max_tasks_per_worker;
        let mut counted = false;
        loop {
            let mut state = self.state.lock();
            if !counted {
                state.stats.submitted += 1;
                counted = true;
            }
            let refusal = if state.shutdown {
                Some(Error::Shutdown)
            } else {
                state
                    .broken
                    .as_ref()
                    .map(|why| Error::Handshake(why.clone()))
            };
            if let Some(error) = refusal {
                state.stats.failed += 1;
                drop(state);
                task.job
                    .finish(Err(error), Duration::ZERO, &Error::from, &mut drop);
                return;
            }
            if !state.started {
                state.started = true;
                self.wake.notify_all();
            }
            let Some(slot) = state.idle_worker(max_tasks) else {
                // Every worker with room has a task in flight, so a reply, and with it a
                // refill, is on its way (or a worker is starting, and refills once it runs).
                state.queue.push_back(task);
                return;
            };
            drop(state);
            let writer = self.writer(slot);
            let mut writer = writer.lock();
            let mut state = self.state.lock();
            // The worker may have died or filled up meanwhile: choose again.
            if writer.is_none() || state.idle_worker(max_tasks) != Some(slot) {
                continue;
            }
            let mut frames = Vec::with_capacity(1);
            let cancelled = state.send(slot, task, &mut frames);
            drop(state);
            if let Some(stream) = writer.as_mut() {
                write_frames(stream, &frames);
            }
            drop(writer);
            drop(cancelled);
            return;
        }
    }

    /// Moves queued tasks to `slot`'s worker until its window is full, once at most half the
    /// window is in flight: a worker with more has replies on their way, each a later chance
    /// to refill, and waiting for half the window makes each write carry that many tasks.
    pub(super) fn refill(&self, slot: usize) {
        let writer = self.writer(slot);
        let mut writer = writer.lock();
        let Some(stream) = writer.as_mut() else {
            return;
        };
        let mut frames = Vec::new();
        let mut cancelled = Vec::new();
        {
            let mut state = self.state.lock();
            if state.slots[slot].in_flight.len() > state.window() / 2 {
                return;
            }
            while state.has_room(slot, self.config.max_tasks_per_worker) {
                let Some(task) = state.queue.pop_front() else {
                    break;
                };
                cancelled.extend(state.send(slot, task, &mut frames));
            }
        }
        write_frames(stream, &frames);
        drop(writer);
        drop(cancelled);
    }
}

/// Writes task frames to a worker, as few writes as the socket takes. A failed write means the
/// worker died; its supervisor then re-sends or fails what was in flight, so the error needs
/// no handling here.
fn write_frames(stream: &mut UnixStream, frames: &[Arc<Vec<u8>>]) {
    // At most the largest window of frames is written at once, within every system's limit
    // of slices per write.
    let mut slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return,
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
