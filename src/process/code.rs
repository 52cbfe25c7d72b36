//! Task functions that travel to worker processes as code offsets.
//!
//! # Design
//!
//! A function pointer means nothing in another process, but a worker runs the very same
//! executable (the handshake checks its build identity, and that the worker finds a known
//! probe function at the parent's offset), and address-space layout randomisation
//! moves the whole image by one amount. So the distance between a function and a fixed
//! [`anchor`] is the same in the parent and in every worker: the parent sends offsets, the
//! worker adds them to its own anchor's address.
//!
//! Two offsets travel with every task: the user's `fn(A) -> R`, and the [`trampoline`]
//! monomorphised for that `(A, R)`, which knows how to decode `A`s and encode `R`s. The worker
//! itself stays non-generic.

use super::protocol::{self, RemoteFailure};
use crate::{Payload, unwind};

/// The worker-side entry point for one `(A, R)` pair: runs the function at `func` over the
/// postcard `Vec<A>` in `input`, appending a postcard `Vec<Result<R, RemoteFailure>>` to `out`.
pub(crate) type Trampoline =
    fn(func: i64, input: &[u8], out: &mut Vec<u8>) -> Result<(), RemoteFailure>;

/// The fixed point offsets are measured from; its body only has to keep it a distinct function.
#[inline(never)]
fn anchor() -> u64 {
    std::hint::black_box(0x7061_7265_7865_6300)
}

fn anchor_address() -> usize {
    anchor as fn() -> u64 as usize
}

/// A known function whose offset a worker reports in its hello: if the worker's offset from
/// anchor to probe differs from the parent's, the two do not lay out code alike, and no task
/// offset may be sent. Its body differs from the anchor's so the two are never merged.
#[inline(never)]
fn probe() -> u64 {
    std::hint::black_box(0x7072_6f62_6500_0000)
}

/// The probe's offset from the anchor, as this process computes it.
pub(crate) fn probe_offset() -> i64 {
    offset_of(probe as fn() -> u64 as usize)
}

/// The offset of a function pointer (passed as an address) from the anchor.
pub(crate) fn offset_of(address: usize) -> i64 {
    address.wrapping_sub(anchor_address()) as i64
}

/// The offset of the trampoline for `(A, R)`.
pub(crate) fn trampoline_offset<A: Payload, R: Payload>() -> i64 {
    offset_of(trampoline::<A, R> as Trampoline as usize)
}

/// Turns an offset received from the parent back into a function pointer of type `F`.
///
/// # Safety
///
/// `F` must be a function-pointer type, and `offset` must come from [`offset_of`] applied to
/// a function of exactly type `F` in a process running the same executable. The pool only
/// sends offsets to workers that passed the handshake (same protocol version, the same
/// executable identity, and the same [`probe_offset`]), and it pairs every function offset with the trampoline
/// monomorphised for that function's own argument and result types.
pub(crate) unsafe fn resolve<F: Copy>(offset: i64) -> F {
    const { assert!(size_of::<F>() == size_of::<usize>()) };
    let address = anchor_address().wrapping_add(offset as usize);
    // SAFETY: by this function's contract `address` is the address of a function of type `F`
    // in this process, and `F` is a function pointer, which has the size of `usize`.
    unsafe { std::mem::transmute_copy::<usize, F>(&address) }
}

/// Runs `func` (a `fn(A) -> R` offset) over every decoded item. Each item is caught on its own,
/// so a panic or an unserializable result fails only that item.
pub(crate) fn trampoline<A: Payload, R: Payload>(
    func: i64,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), RemoteFailure> {
    // SAFETY: the parent sends this trampoline's offset only together with the offset of a
    // `fn(A) -> R` (see `ProcessPool::submit`), to a worker of the same build.
    let f: fn(A) -> R = unsafe { resolve(func) };
    let items: Vec<A> = postcard::from_bytes(input)
        .map_err(|e| RemoteFailure::Serialization(format!("could not decode the argument: {e}")))?;
    // A postcard sequence is its varint length followed by its elements, so the results can be
    // encoded one by one and still decode as one `Vec`.
    encode(&items.len(), out)?;
    for item in items {
        let outcome = unwind::catch(|| f(item)).map_err(|panic| RemoteFailure::Panicked {
            message: panic.message,
            location: panic.location,
        });
        let mark = out.len();
        let encoded = match &outcome {
            Ok(value) => encode(&Ok::<&R, RemoteFailure>(value), out),
            Err(failure) => encode(&Err::<&R, &RemoteFailure>(failure), out),
        };
        if let Err(failure) = encoded {
            out.truncate(mark);
            encode(&Err::<(), RemoteFailure>(failure), out)?;
        }
    }
    Ok(())
}

fn encode<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), RemoteFailure> {
    // A `Serialize` impl may panic as well as fail; either way only this value is lost.
    match unwind::catch(|| protocol::encode_into(value, out)) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(RemoteFailure::Serialization(format!(
            "could not encode the result: {e}"
        ))),
        Err(_) => Err(RemoteFailure::Serialization(
            "encoding the result panicked".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(x: u32) -> u32 {
        if x == 13 {
            crate::deliberate::panic_with("unlucky");
        }
        x * 2
    }

    #[test]
    fn offsets_resolve_to_the_same_function() {
        let offset = offset_of(double as fn(u32) -> u32 as usize);
        // SAFETY: the offset was just taken from a `fn(u32) -> u32` in this very process.
        let f: fn(u32) -> u32 = unsafe { resolve(offset) };
        assert_eq!(f(21), 42);
    }

    #[test]
    fn trampoline_fails_only_the_panicking_item() {
        unwind::install_hook();
        let input = postcard::to_stdvec(&vec![1_u32, 13, 5]).unwrap();
        let mut out = Vec::new();
        let tramp: Trampoline = trampoline::<u32, u32>;
        tramp(
            offset_of(double as fn(u32) -> u32 as usize),
            &input,
            &mut out,
        )
        .unwrap();
        let results: Vec<Result<u32, RemoteFailure>> = postcard::from_bytes(&out).unwrap();
        assert_eq!(results[0], Ok(2));
        assert!(
            matches!(&results[1], Err(RemoteFailure::Panicked { message, location: Some(_) }) if *message == format!("{} unlucky", crate::deliberate::PREFIX))
        );
        assert_eq!(results[2], Ok(10));
    }

    #[test]
    fn undecodable_input_fails_the_whole_task() {
        let mut out = Vec::new();
        let err = trampoline::<String, u32>(
            offset_of(double as fn(u32) -> u32 as usize),
            &[5, 0xff],
            &mut out,
        );
        assert!(matches!(err, Err(RemoteFailure::Serialization(_))));
    }
}
