//! How a result settles its future: one value for a `submit`, a chunk of per-item results
//! for a `map`, every failure naming the rank it happened on.

use std::time::Duration;

use super::wire::Origin;
use crate::future::Promise;
use crate::map::Chunk;
use crate::process::job::{decode_results, merge};
use crate::{Error, Payload};

/// Settles one task's future from its reply.
pub(super) trait Job: Send {
    /// `Pending -> Running`; `false` if the future was cancelled meanwhile.
    fn start(&self) -> bool;
    /// Decodes the reply, tells `record` whether the task as a whole succeeded (so the stats
    /// are current before anyone sees the result), then resolves the future.
    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        origin: &Origin,
        compute: Duration,
        record: &mut dyn FnMut(bool),
    );
}

/// Decodes one result per sent item, each failure naming the rank it happened on.
fn results<R: Payload>(
    reply: Result<&[u8], Error>,
    sent: usize,
    origin: &Origin,
) -> Result<Vec<Result<R, Error>>, Error> {
    let decoded = decode_results::<R>(reply?, sent)?;
    Ok(decoded
        .into_iter()
        .map(|r| r.map_err(|f| origin.item_error(f)))
        .collect())
}

/// A `submit`.
pub(super) struct Single<R>(pub(super) Promise<R>);

impl<R: Payload> Job for Single<R> {
    fn start(&self) -> bool {
        self.0.start()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        origin: &Origin,
        _: Duration,
        record: &mut dyn FnMut(bool),
    ) {
        let outcome = results::<R>(reply, 1, origin).and_then(|mut one| {
            one.pop()
                .unwrap_or(Err(Error::Protocol("empty reply".into())))
        });
        record(outcome.is_ok());
        self.0.complete(outcome);
    }
}

/// A `map` chunk; `rejected` holds the positions and errors of items whose argument did not
/// serialize, which were left out of the message.
pub(super) struct Batch<R> {
    pub(super) promise: Promise<Chunk<R>>,
    pub(super) sent: usize,
    pub(super) rejected: Vec<(usize, Error)>,
}

impl<R: Payload> Job for Batch<R> {
    fn start(&self) -> bool {
        self.promise.start()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        origin: &Origin,
        compute: Duration,
        record: &mut dyn FnMut(bool),
    ) {
        let decoded = results::<R>(reply, self.sent, origin);
        record(decoded.is_ok());
        let rejected = self.rejected;
        self.promise.complete(
            decoded.map(|r| Chunk::from_results(merge(r.into_iter(), rejected), compute)),
        );
    }
}
