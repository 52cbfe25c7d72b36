//! A map polled as an async stream: the non-blocking twin of `next_batch`. See
//! [`Streaming`](crate::Streaming) for the public side.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use super::{Map, MapUnordered};
use crate::Error;

impl<I: Iterator, R, K> Map<'_, I, R, K> {
    /// Like `next_batch`, but returns `Pending` instead of waiting, with `cx`'s waker
    /// registered where the next chunk's completion will wake it.
    ///
    /// Unlike the iterator it never runs a queued chunk on the calling thread: that would run
    /// the mapped function on an async runtime's thread.
    fn poll_batch(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        if let Some(more) = self.config_batch() {
            return Poll::Ready(more);
        }
        self.fill();
        let (position, outcome) = match &self.completions {
            None => {
                let Some(front) = self.in_flight.front_mut() else {
                    self.progress.finish();
                    return Poll::Ready(false);
                };
                let oldest = front
                    .future
                    .as_mut()
                    .expect("an ordered map takes only its oldest chunk");
                // The future keeps `cx`'s waker and wakes it when the chunk is done.
                (0, Some(ready!(Pin::new(oldest).poll(cx))))
            }
            Some(completions) => {
                if self.active == 0 {
                    self.progress.finish();
                    return Poll::Ready(false);
                }
                let seq = match completions.finished.try_recv() {
                    Ok(seq) => seq,
                    Err(_) => {
                        // Registered before looking again, so a chunk that finishes between
                        // the two looks still wakes this task.
                        completions.waker.register(cx.waker());
                        match completions.finished.try_recv() {
                            Ok(seq) => seq,
                            Err(_) => return Poll::Pending,
                        }
                    }
                };
                (self.position_of(seq), None)
            }
        };
        let (first_index, len, future) = self
            .take_chunk(position)
            .expect("the chunk polled or reported is in the window");
        // A reported chunk is done: `result` returns at once.
        let outcome = outcome.unwrap_or_else(|| future.result());
        let outcome = self.observed(outcome);
        self.settle(first_index, len, outcome);
        Poll::Ready(true)
    }

    /// The next result, or `Pending` with `cx`'s waker registered.
    pub(crate) fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<R, Error>>> {
        loop {
            if let Some(result) = self.ready.next() {
                return Poll::Ready(Some(result));
            }
            if !ready!(self.poll_batch(cx)) {
                return Poll::Ready(None);
            }
        }
    }
}

impl<I: Iterator, R, K> MapUnordered<'_, I, R, K> {
    /// The next `(input index, result)`, or `Pending` with `cx`'s waker registered.
    pub(crate) fn poll_item(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<(usize, Result<R, Error>)>> {
        let inner = &mut self.inner;
        loop {
            let index = inner.ready.next_index();
            if let Some(result) = inner.ready.next() {
                return Poll::Ready(Some((index, result)));
            }
            if !ready!(inner.poll_batch(cx)) {
                return Poll::Ready(None);
            }
        }
    }
}
