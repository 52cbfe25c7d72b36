//! The wire protocol between a [`ProcessPool`](crate::ProcessPool) and its worker processes.
//!
//! # Design
//!
//! Every message is one *frame*: a `u32` little-endian body length, then the body. The body is
//! a postcard-encoded header enum ([`ToWorker`] or [`FromWorker`]) followed, for tasks and
//! results, by a raw payload that is itself postcard (the task's `Vec<A>` in, its
//! `Vec<Result<R, RemoteFailure>>` out). Keeping the payload outside the header enum means a
//! 100 MB argument is encoded once, straight into the frame, and decoded straight out of the
//! receive buffer, never copied into an intermediate `Vec<u8>`.
//!
//! | message | sender | payload | why |
//! |---|---|---|---|
//! | `Hello { version, identity, probe, pid, nonce }` | worker, first | none | the parent only sends code offsets to a worker of the same protocol and the same build, which finds a known probe function at the parent's offset |
//! | `Init { initializer }` | parent, once, only if configured | none | the per-worker initializer is a code offset too, so it waits for the handshake |
//! | `InitDone` / `InitFailed { message }` | worker | none | a failed initializer is reported instead of serving tasks |
//! | `Task { id, trampoline, func }` | parent | `Vec<A>` | one `submit`, or one whole chunk of a `map` |
//! | `Done { id, compute_ns }` | worker | `Vec<Result<R, RemoteFailure>>` | one result per item, so a panic or an unserializable result fails only its item |
//! | `Failed { id, failure }` | worker | none | the whole payload could not be decoded |
//!
//! There is no shutdown message: the parent closes the socket, and the worker exits at EOF.
//!
//! The reader never trusts a length prefix: a length above the configured maximum is a
//! protocol error, and the receive buffer grows only when it is full of bytes that actually
//! arrived (at most doubling), so a bogus prefix cannot make it allocate more than what was
//! sent, and never more than the maximum frame size.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::Error;

/// Bumped whenever a message changes shape; part of the handshake.
pub(crate) const PROTOCOL_VERSION: u32 = 2;

/// Bytes of the length prefix.
const HEADER: usize = 4;

/// The receive buffer's starting (and resting) size.
const INITIAL_BUFFER: usize = 64 * 1024;

/// Messages from the parent to a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum ToWorker {
    /// Run the per-worker initializer found at this code offset, then report back.
    Init { initializer: i64 },
    /// Run `func` over the payload's items through the monomorphised `trampoline`.
    Task { id: u64, trampoline: i64, func: i64 },
}

/// Messages from a worker to the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum FromWorker {
    /// The first frame a worker sends.
    Hello {
        version: u32,
        /// The executable's build identity, see `launch::identity`.
        identity: u64,
        /// The worker's own offset of the probe function, see `code::probe_offset`.
        probe: i64,
        pid: u32,
        nonce: u64,
    },
    /// The initializer returned.
    InitDone,
    /// The initializer panicked; the worker exits after sending this.
    InitFailed { message: String },
    /// A task ran; the payload holds one result per item.
    Done { id: u64, compute_ns: u64 },
    /// A task's payload could not be decoded, so none of its items ran.
    Failed { id: u64, failure: RemoteFailure },
}

/// Why one item failed inside a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum RemoteFailure {
    /// The task panicked.
    Panicked {
        message: String,
        location: Option<String>,
    },
    /// The argument could not be decoded or the result could not be encoded.
    Serialization(String),
}

impl From<RemoteFailure> for Error {
    fn from(failure: RemoteFailure) -> Self {
        match failure {
            RemoteFailure::Panicked { message, location } => Error::Panicked { message, location },
            RemoteFailure::Serialization(message) => Error::Serialization(message),
        }
    }
}

/// Builds one complete frame: the length prefix, the postcard `header`, then whatever
/// `payload` appends.
///
/// # Errors
///
/// As [`append_frame`].
pub(crate) fn encode_frame<H: Serialize>(
    header: &H,
    max_frame: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<Vec<u8>, Error> {
    // Room for a small task or reply whole, so it is allocated once.
    let mut frame = Vec::with_capacity(64);
    append_frame(&mut frame, header, max_frame, payload)?;
    Ok(frame)
}

/// Appends one complete frame to `out`, which may already hold others: several frames then
/// leave in one write. On an error `out` is left as it was.
///
/// # Errors
///
/// [`Error::Serialization`] when the header or payload fails to encode, and
/// [`Error::InvalidArgument`] when the frame would exceed `max_frame`.
pub(crate) fn append_frame<H: Serialize>(
    out: &mut Vec<u8>,
    header: &H,
    max_frame: usize,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    let start = out.len();
    let appended = append_body(out, header, payload).and_then(|()| {
        let body = out.len() - start - HEADER;
        u32::try_from(body)
            .ok()
            .filter(|&len| len as usize <= max_frame)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "a {body}-byte message exceeds the maximum frame size of {max_frame} bytes"
                ))
            })
    });
    match appended {
        Ok(len) => {
            out[start..start + HEADER].copy_from_slice(&len.to_le_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Appends the postcard encoding of `value` to `out`.
///
/// Unlike `postcard::to_io`, which makes a `Write` call per field (a `memcpy` call per varint),
/// it pushes short fields byte by byte, which is what keeps encoding a chunk of small items
/// cheap.
///
/// # Errors
///
/// Whatever `value`'s `Serialize` reports.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> postcard::Result<()> {
    postcard::serialize_with_flavor(value, Append(out))
}

/// A postcard output that appends to a vector.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        // A varint is at most 10 bytes: a few pushes beat a call to `memcpy`.
        if bytes.len() <= 16 {
            bytes.iter().for_each(|&byte| self.0.push(byte));
        } else {
            self.0.extend_from_slice(bytes);
        }
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

fn append_body<H: Serialize>(
    out: &mut Vec<u8>,
    header: &H,
    payload: impl FnOnce(&mut Vec<u8>) -> Result<(), Error>,
) -> Result<(), Error> {
    out.extend_from_slice(&[0; HEADER]);
    encode_into(header, out).map_err(|e| Error::Serialization(e.to_string()))?;
    payload(out)
}

/// The bodies of the complete frames that [`FrameReader::next_frames`] gathered.
pub(crate) fn frames(mut bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let (prefix, rest) = bytes.split_first_chunk::<HEADER>()?;
        let (body, rest) = rest.split_at_checked(u32::from_le_bytes(*prefix) as usize)?;
        bytes = rest;
        Some(body)
    })
}

/// Splits a frame body into its postcard header and the raw payload after it.
pub(crate) fn decode_header<'a, H: Deserialize<'a>>(
    body: &'a [u8],
) -> Result<(H, &'a [u8]), Error> {
    postcard::take_from_bytes(body)
        .map_err(|e| Error::Protocol(format!("undecodable message: {e}")))
}

/// Reads frames from a byte stream into one reusable buffer.
///
/// An I/O error (including a read timeout) leaves the partial frame buffered, so the next call
/// resumes where this one stopped.
pub(crate) struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max_frame: usize,
}

impl<R: Read> FrameReader<R> {
    /// A reader that rejects frames whose body exceeds `max_frame` bytes.
    pub(crate) fn new(inner: R, max_frame: usize) -> Self {
        FrameReader {
            inner,
            buf: vec![0; Self::resting_size(max_frame)],
            start: 0,
            end: 0,
            max_frame,
        }
    }

    fn resting_size(max_frame: usize) -> usize {
        INITIAL_BUFFER.min(max_frame.saturating_add(HEADER))
    }

    /// The next frame's body, or `None` when the stream ended cleanly between frames.
    ///
    /// # Errors
    ///
    /// `InvalidData` for a length above the maximum, `UnexpectedEof` for a stream that ends
    /// inside a frame, and any error of the underlying reader.
    pub(crate) fn next_frame(&mut self) -> io::Result<Option<&[u8]>> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            // Give back the memory of an exceptionally large frame once it is consumed.
            if self.buf.len() > 16 * INITIAL_BUFFER {
                self.buf = vec![0; Self::resting_size(self.max_frame)];
            }
        }
        if !self.fill(HEADER)? {
            return if self.start == self.end {
                Ok(None)
            } else {
                Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame header",
                ))
            };
        }
        let mut prefix = [0; HEADER];
        prefix.copy_from_slice(&self.buf[self.start..self.start + HEADER]);
        let len = u32::from_le_bytes(prefix) as usize;
        if len > self.max_frame {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "frame of {len} bytes exceeds the maximum of {} bytes",
                    self.max_frame
                ),
            ));
        }
        if !self.fill(HEADER + len)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended inside a frame",
            ));
        }
        let body = self.start + HEADER..self.start + HEADER + len;
        self.start = body.end;
        Ok(Some(&self.buf[body]))
    }

    /// Whether a whole frame is buffered, so that [`next_frame`](Self::next_frame) returns it
    /// without reading: a reader drains what one read brought before it acts on it.
    pub(crate) fn frame_ready(&self) -> bool {
        self.buffered_frame_len()
            .is_some_and(|len| self.end - self.start >= HEADER + len)
    }

    /// Waits for the next frame, then moves it and every other whole frame already buffered,
    /// length prefixes included, to the end of `out`; [`frames`] splits them again. `false`
    /// when the stream ended cleanly between frames.
    ///
    /// # Errors
    ///
    /// As [`next_frame`](Self::next_frame).
    pub(crate) fn next_frames(&mut self, out: &mut Vec<u8>) -> io::Result<bool> {
        let Some(first) = self.next_frame()?.map(<[u8]>::len) else {
            return Ok(false);
        };
        let from = self.start - first - HEADER;
        while self.frame_ready() {
            self.start += HEADER + self.buffered_frame_len().unwrap_or_default();
        }
        out.extend_from_slice(&self.buf[from..self.start]);
        Ok(true)
    }

    /// The length of the buffered frame, once its prefix is buffered and within the maximum.
    fn buffered_frame_len(&self) -> Option<usize> {
        let prefix = self
            .buf
            .get(self.start..self.end)?
            .first_chunk::<HEADER>()?;
        Some(u32::from_le_bytes(*prefix) as usize).filter(|&len| len <= self.max_frame)
    }

    /// The next message: its header, decoded, and the raw payload after it; `None` when the
    /// stream ended cleanly between frames.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`] for a frame over the maximum size, a stream that ends inside a
    /// frame, or a body that does not decode as `H`; [`Error::Io`] for an error of the
    /// underlying reader, such as a read timeout.
    pub(crate) fn next_message<'a, H: Deserialize<'a>>(
        &'a mut self,
    ) -> Result<Option<(H, &'a [u8])>, Error> {
        match self.next_frame() {
            Ok(Some(body)) => decode_header(body).map(Some),
            Ok(None) => Ok(None),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                ) =>
            {
                Err(Error::Protocol(e.to_string()))
            }
            Err(e) => Err(Error::from(e)),
        }
    }

    /// Reads until `need` bytes are buffered from `start`; `false` at EOF before that.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        while self.end - self.start < need {
            if self.start + need > self.buf.len() && self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.buf.len() {
                // Full of real bytes: at most double, and never beyond this frame's size.
                let grown = (self.buf.len() * 2).min(need).max(self.end + 1);
                self.buf.reserve_exact(grown - self.buf.len());
                self.buf.resize(grown, 0);
            }
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The underlying stream, for socket options such as read timeouts.
    pub(crate) fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.buf.capacity()
    }
}

impl<R> std::fmt::Debug for FrameReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameReader")
            .field("buffered", &(self.end - self.start))
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod test;
