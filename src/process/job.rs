//! A task on its way to a worker process: its encoded frame, and how the worker's reply
//! resolves its future (one `submit`, or one chunk of a `map`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::protocol::{self, RemoteFailure};
use crate::future::Promise;
use crate::map::Chunk;
use crate::{Error, Payload, unwind};

/// How an item's `RemoteFailure` becomes the caller's `Error`: `Error::from` for worker
/// processes; an MPI pool adds the rank and host it happened on.
pub(crate) type Failure<'a> = &'a dyn Fn(RemoteFailure) -> Error;

/// Resolves one task's future from the worker's reply.
pub(crate) trait Job: Send {
    /// `Pending -> Running`; `false` if the future was cancelled meanwhile.
    fn start(&self) -> bool;
    /// Decodes the reply (a `Vec<Result<R, RemoteFailure>>`), tells `record` whether the task
    /// as a whole succeeded (so the stats are current before anyone sees the result), then
    /// resolves the future.
    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        compute: Duration,
        failure: Failure<'_>,
        record: &mut dyn FnMut(bool),
    );
}

/// Runs serde code of the user's types, so that a `Serialize` or `Deserialize` that panics
/// fails only its own task instead of a pool thread (or the caller).
pub(crate) fn guarded<T>(
    what: &str,
    serde: impl FnOnce() -> postcard::Result<T>,
) -> Result<T, Error> {
    match unwind::catch(serde) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(Error::Serialization(format!("could not {what}: {e}"))),
        Err(_) => Err(Error::Serialization(format!(
            "could not {what}: its serde implementation panicked"
        ))),
    }
}

fn decode_results<R: Payload>(
    payload: &[u8],
    expected: usize,
) -> Result<Vec<Result<R, RemoteFailure>>, Error> {
    let results: Vec<Result<R, RemoteFailure>> =
        guarded("decode the result", || postcard::from_bytes(payload))?;
    if results.len() == expected {
        Ok(results)
    } else {
        Err(Error::Protocol(format!(
            "expected {expected} results, got {}",
            results.len()
        )))
    }
}

/// A `submit`.
pub(crate) struct Single<R>(pub(crate) Promise<R>);

impl<R: Payload> Job for Single<R> {
    fn start(&self) -> bool {
        self.0.start()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        _compute: Duration,
        failure: Failure<'_>,
        record: &mut dyn FnMut(bool),
    ) {
        let outcome = reply
            .and_then(|payload| decode_results::<R>(payload, 1))
            .and_then(|mut results| {
                results
                    .pop()
                    .map_or(Err(Error::Protocol("empty reply".into())), |r| {
                        r.map_err(failure)
                    })
            });
        record(outcome.is_ok());
        self.0.complete(outcome);
    }
}

/// A `map` chunk; `rejected` holds the positions and errors of items whose argument did not
/// serialize, which were left out of the frame.
pub(crate) struct Batch<R> {
    pub(crate) promise: Promise<Chunk<R>>,
    pub(crate) sent: usize,
    pub(crate) rejected: Vec<(usize, Error)>,
}

impl<R: Payload> Job for Batch<R> {
    fn start(&self) -> bool {
        self.promise.start()
    }

    fn finish(
        self: Box<Self>,
        reply: Result<&[u8], Error>,
        compute: Duration,
        failure: Failure<'_>,
        record: &mut dyn FnMut(bool),
    ) {
        let Batch {
            promise,
            sent,
            rejected,
        } = *self;
        let decoded = reply.and_then(|payload| decode_chunk::<R>(payload, sent));
        record(decoded.is_ok());
        promise.complete(decoded.map(|(values, failed)| {
            let failed = failed.into_iter().map(|(at, why)| (at, failure(why)));
            Chunk::from_parts(values, place_failures(failed, rejected), compute)
        }));
    }
}

/// A chunk's reply: the values in order, and the failed items aside by their position among
/// the items sent.
type Decoded<R> = (Vec<R>, Vec<(usize, RemoteFailure)>);

/// Decodes a chunk's reply in one pass.
fn decode_chunk<R: Payload>(payload: &[u8], expected: usize) -> Result<Decoded<R>, Error> {
    let (values, failed) = guarded("decode the result", || {
        let mut decoder = postcard::Deserializer::from_bytes(payload);
        serde::Deserializer::deserialize_seq(&mut decoder, ChunkReply::<R>::new(expected))
    })?;
    let got = values.len() + failed.len();
    if got == expected {
        Ok((values, failed))
    } else {
        Err(Error::Protocol(format!(
            "expected {expected} results, got {got}"
        )))
    }
}

/// Visits a reply's `Vec<Result<R, RemoteFailure>>` without building it: a value goes
/// straight into a vector of values, allocated once, and a failure aside.
struct ChunkReply<R> {
    expected: usize,
    values: std::marker::PhantomData<R>,
}

impl<R> ChunkReply<R> {
    fn new(expected: usize) -> Self {
        ChunkReply {
            expected,
            values: std::marker::PhantomData,
        }
    }
}

impl<'de, R: Payload> serde::de::Visitor<'de> for ChunkReply<R> {
    type Value = Decoded<R>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a sequence of {} results", self.expected)
    }

    fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        // The length prefix is the worker's word: never reserve beyond what was sent.
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.expected));
        let mut failed = Vec::new();
        let mut position = 0;
        while let Some(result) = seq.next_element::<Result<R, RemoteFailure>>()? {
            match result {
                Ok(value) => values.push(value),
                Err(why) => failed.push((position, why)),
            }
            position += 1;
        }
        Ok((values, failed))
    }
}

/// The failures of a chunk by their position in the whole chunk: those of items that ran,
/// given by position among the items sent, and the `rejected` ones left out of the frame.
fn place_failures(
    failed: impl Iterator<Item = (usize, Error)>,
    rejected: Vec<(usize, Error)>,
) -> Vec<(usize, Error)> {
    let mut placed = Vec::with_capacity(failed.size_hint().0 + rejected.len());
    let mut rejected = rejected.into_iter().peekable();
    // Items rejected before the one at hand, which shift it right.
    let mut before = 0;
    for (sent_at, error) in failed {
        while let Some(left_out) = rejected.next_if(|(at, _)| *at <= sent_at + before) {
            placed.push(left_out);
            before += 1;
        }
        placed.push((sent_at + before, error));
    }
    placed.extend(rejected);
    placed
}

/// A `map` chunk's items as a task's payload.
pub(crate) struct EncodedChunk {
    /// The whole frame, from the `frame` function given to [`encode_chunk`].
    pub(crate) frame: Result<Vec<u8>, Error>,
    /// Items in the payload.
    pub(crate) sent: usize,
    /// Items left out, by position, with why.
    pub(crate) rejected: Vec<(usize, Error)>,
}

/// Encodes `items` as a chunk's payload inside the frame that `frame` builds around a payload
/// writer: all at once, or, only when some item does not serialize, item by item, leaving
/// such items out so that they alone fail.
pub(crate) fn encode_chunk<A: serde::Serialize>(
    items: &[A],
    frame: impl Fn(&mut dyn FnMut(&mut Vec<u8>) -> Result<(), Error>) -> Result<Vec<u8>, Error>,
) -> EncodedChunk {
    let whole = frame(&mut |out| {
        guarded("encode the argument", || {
            // A guess that saves most of the regrowing for plain items.
            out.reserve(std::mem::size_of_val(items) + 16);
            protocol::encode_into(items, out)
        })
    });
    if whole.is_ok() {
        return EncodedChunk {
            frame: whole,
            sent: items.len(),
            rejected: Vec::new(),
        };
    }
    let mut encoded = Vec::new();
    let mut rejected = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match guarded("encode the argument", || postcard::to_stdvec(item)) {
            Ok(bytes) => encoded.push(bytes),
            Err(e) => rejected.push((index, e)),
        }
    }
    let sent = encoded.len();
    let frame = frame(&mut |out| {
        guarded("encode the chunk length", || {
            protocol::encode_into(&sent, out)
        })?;
        encoded
            .iter()
            .for_each(|bytes| out.extend_from_slice(bytes));
        Ok(())
    });
    EncodedChunk {
        frame,
        sent,
        rejected,
    }
}

/// Puts the rejected items back at their positions among the results of the sent ones.
pub(crate) fn merge<R>(
    sent: impl Iterator<Item = Result<R, Error>>,
    rejected: Vec<(usize, Error)>,
) -> Vec<Result<R, Error>> {
    let mut out = Vec::with_capacity(sent.size_hint().0 + rejected.len());
    let mut rejected = rejected.into_iter().peekable();
    for result in sent {
        while let Some((_, error)) = rejected.next_if(|(index, _)| *index == out.len()) {
            out.push(Err(error));
        }
        out.push(result);
    }
    out.extend(rejected.map(|(_, error)| Err(error)));
    out
}

/// A task with its encoded frame, kept until it completes so it can be re-sent.
pub(super) struct Task {
    pub(super) id: u64,
    pub(super) frame: Arc<Vec<u8>>,
    pub(super) job: Box<dyn Job>,
    pub(super) started: bool,
    pub(super) attempts: u32,
    pub(super) submitted: Instant,
    pub(super) encode: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_items_return_to_their_positions() {
        let sent = vec![Ok(1), Ok(3)].into_iter();
        let merged = merge(
            sent,
            vec![
                (0, Error::Timeout),
                (2, Error::Cancelled),
                (4, Error::Shutdown),
            ],
        );
        let shape: Vec<_> = merged.iter().map(|r| r.as_ref().ok().copied()).collect();
        assert_eq!(shape, [None, Some(1), None, Some(3), None]);
    }

    /// Items 0, 2 and 5 were left out of the frame; of the four sent (1, 3, 4, 6), the
    /// second and the fourth failed in the worker.
    #[test]
    fn failures_of_sent_and_rejected_items_take_their_positions() {
        let failed = [(1, Error::Timeout), (3, Error::Cancelled)].into_iter();
        let rejected = vec![
            (0, Error::Shutdown),
            (2, Error::Shutdown),
            (5, Error::Shutdown),
        ];
        let positions: Vec<usize> = place_failures(failed, rejected)
            .into_iter()
            .map(|(at, _)| at)
            .collect();
        assert_eq!(positions, [0, 2, 3, 5, 6]);
    }

    #[test]
    fn a_reply_decodes_into_values_and_failures_aside() {
        let reply: Vec<Result<u32, RemoteFailure>> = vec![
            Ok(1),
            Err(RemoteFailure::Serialization("bad".into())),
            Ok(3),
        ];
        let payload = postcard::to_stdvec(&reply).unwrap();
        let (values, failed) = decode_chunk::<u32>(&payload, 3).unwrap();
        assert_eq!(values, [1, 3]);
        assert_eq!(failed, [(1, RemoteFailure::Serialization("bad".into()))]);
        assert!(matches!(
            decode_chunk::<u32>(&payload, 4),
            Err(Error::Protocol(_))
        ));
    }
}
