//! The frame reader and the messages, by example and by property. The properties run
//! `PROPTEST_CASES` cases each (256 unless set), in well under a second each.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// Hands out at most `step` bytes per read, like a socket under load or a peer that drips.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn remote_failure() -> impl Strategy<Value = RemoteFailure> {
    prop_oneof![
        (".*", proptest::option::of(".*"))
            .prop_map(|(message, location)| RemoteFailure::Panicked { message, location }),
        ".*".prop_map(RemoteFailure::Serialization),
    ]
}

fn from_worker() -> impl Strategy<Value = FromWorker> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            any::<i64>(),
            any::<u32>(),
            any::<u64>()
        )
            .prop_map(|(version, identity, probe, pid, nonce)| FromWorker::Hello {
                version,
                identity,
                probe,
                pid,
                nonce,
            }),
        Just(FromWorker::InitDone),
        ".*".prop_map(|message| FromWorker::InitFailed { message }),
        (any::<u64>(), any::<u64>())
            .prop_map(|(id, compute_ns)| FromWorker::Done { id, compute_ns }),
        (any::<u64>(), remote_failure())
            .prop_map(|(id, failure)| FromWorker::Failed { id, failure }),
    ]
}

fn to_worker() -> impl Strategy<Value = ToWorker> {
    prop_oneof![
        any::<i64>().prop_map(|initializer| ToWorker::Init { initializer }),
        (any::<u64>(), any::<i64>(), any::<i64>()).prop_map(|(id, trampoline, func)| {
            ToWorker::Task {
                id,
                trampoline,
                func,
            }
        }),
    ]
}

fn frame_of<H: Serialize>(header: &H, payload: &[u8]) -> Vec<u8> {
    encode_frame(header, u32::MAX as usize, |out| {
        out.extend_from_slice(payload);
        Ok(())
    })
    .unwrap()
}

/// Reads every message of `stream` until it ends or fails, checking after each step that the
/// buffer never exceeds the frame limit nor twice what actually arrived.
fn drain<H: for<'a> Deserialize<'a>>(stream: &[u8], max: usize, step: usize) -> Option<Error> {
    let mut reader = FrameReader::new(Trickle { data: stream, step }, max);
    let resting = FrameReader::<&[u8]>::resting_size(max);
    let bounded = |reader: &FrameReader<Trickle<'_>>| {
        let arrived = stream.len() - reader.inner.data.len();
        let allocated = reader.allocated();
        assert!(allocated <= max + HEADER, "{allocated} > limit {max}");
        assert!(
            allocated <= resting.max(2 * arrived),
            "{allocated} bytes for {arrived} arrived"
        );
    };
    loop {
        let outcome = reader.next_message::<H>().map(|m| m.is_some());
        bounded(&reader);
        match outcome {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => return Some(e),
        }
    }
}

proptest! {
    #[test]
    fn valid_messages_round_trip_through_a_slow_stream(
        messages in vec((from_worker(), vec(any::<u8>(), 0..300)), 0..20),
        commands in vec(to_worker(), 0..5),
        step in 1_usize..64,
    ) {
        let stream: Vec<u8> = messages.iter().flat_map(|(m, p)| frame_of(m, p)).collect();
        let mut reader = FrameReader::new(Trickle { data: &stream, step }, 1 << 20);
        for (message, payload) in &messages {
            let (decoded, rest) = reader.next_message::<FromWorker>().unwrap().unwrap();
            prop_assert_eq!(&decoded, message);
            prop_assert_eq!(rest, &payload[..]);
        }
        prop_assert!(reader.next_message::<FromWorker>().unwrap().is_none());

        let stream: Vec<u8> = commands.iter().flat_map(|c| frame_of(c, &[])).collect();
        let mut reader = FrameReader::new(&stream[..], 1 << 20);
        for command in &commands {
            let (decoded, rest) = reader.next_message::<ToWorker>().unwrap().unwrap();
            prop_assert_eq!(&decoded, command);
            prop_assert!(rest.is_empty());
        }
        prop_assert!(reader.next_message::<ToWorker>().unwrap().is_none());
    }

    /// What a worker's reader does: gather every whole frame one read brought, in one batch
    /// whatever the read sizes, frames appended one after the other into one buffer.
    #[test]
    fn appended_frames_come_back_in_batches_of_whole_frames(
        messages in vec((from_worker(), vec(any::<u8>(), 0..300)), 0..20),
        step in 1_usize..2048,
    ) {
        let mut stream = Vec::new();
        for (message, payload) in &messages {
            append_frame(&mut stream, message, 1 << 20, |out| {
                out.extend_from_slice(payload);
                Ok(())
            })
            .unwrap();
        }
        let mut reader = FrameReader::new(Trickle { data: &stream, step }, 1 << 20);
        let mut bodies = Vec::new();
        let mut batch = Vec::new();
        while reader.next_frames(&mut batch).unwrap() {
            prop_assert!(!reader.frame_ready());
            bodies.extend(frames(&batch).map(<[u8]>::to_vec));
            batch.clear();
        }
        prop_assert_eq!(bodies.len(), messages.len());
        for (body, (message, payload)) in bodies.iter().zip(&messages) {
            let (decoded, rest) = decode_header::<FromWorker>(body).unwrap();
            prop_assert_eq!(&decoded, message);
            prop_assert_eq!(rest, &payload[..]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_fail_only_as_protocol_errors(
        stream in vec(any::<u8>(), 0..4096),
        max in 1_usize..200_000,
        step in 1_usize..300,
    ) {
        for error in [drain::<FromWorker>(&stream, max, step), drain::<ToWorker>(&stream, max, step)]
            .into_iter()
            .flatten()
        {
            prop_assert!(matches!(error, Error::Protocol(_)), "{:?}", error);
        }
    }

    #[test]
    fn adversarial_length_prefixes_allocate_only_what_arrives(
        len in any::<u32>(),
        max in 1_usize..(1 << 30),
        body in vec(any::<u8>(), 0..3000),
        step in 1_usize..16,
    ) {
        let mut stream = len.to_le_bytes().to_vec();
        stream.extend_from_slice(&body);
        let error = drain::<FromWorker>(&stream, max, step);
        if len as usize > max || body.len() < len as usize {
            prop_assert!(matches!(error, Some(Error::Protocol(_))), "{:?}", error);
        }
    }

    #[test]
    fn oversized_frames_are_protocol_errors(max in 64_usize..100_000, excess in 1_u32..1000) {
        let mut stream = (max as u32 + excess).to_le_bytes().to_vec();
        stream.resize(stream.len() + max + excess as usize, 0);
        let mut reader = FrameReader::new(&stream[..], max);
        let error = reader.next_message::<FromWorker>().unwrap_err();
        prop_assert!(matches!(&error, Error::Protocol(m) if m.contains("exceeds")), "{:?}", error);
        prop_assert!(reader.allocated() <= max + HEADER);
    }

    #[test]
    fn truncated_frames_are_protocol_errors(message in from_worker(), cut in any::<prop::sample::Index>()) {
        // A stream that ends inside the frame.
        let frame = frame_of(&message, &[]);
        let end = 1 + cut.index(frame.len() - 1);
        let error = FrameReader::new(&frame[..end], 1 << 20)
            .next_message::<FromWorker>()
            .unwrap_err();
        prop_assert!(matches!(error, Error::Protocol(_)), "{:?}", error);
        // A complete frame whose body is a cut-off message.
        let body = &frame[HEADER..];
        let short = cut.index(body.len());
        let mut reframed = (short as u32).to_le_bytes().to_vec();
        reframed.extend_from_slice(&body[..short]);
        let error = FrameReader::new(&reframed[..], 1 << 20)
            .next_message::<FromWorker>()
            .unwrap_err();
        prop_assert!(matches!(error, Error::Protocol(_)), "{:?}", error);
    }

    #[test]
    fn garbage_frames_decode_or_fail_as_protocol_errors(body in vec(any::<u8>(), 0..512)) {
        let mut frame = (body.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(&body);
        for outcome in [
            FrameReader::new(&frame[..], 1024).next_message::<FromWorker>().map(drop),
            FrameReader::new(&frame[..], 1024).next_message::<ToWorker>().map(drop),
        ] {
            if let Err(error) = outcome {
                prop_assert!(matches!(error, Error::Protocol(_)), "{:?}", error);
            }
        }
    }
}

#[test]
fn a_large_bogus_length_under_the_limit_allocates_only_what_arrives() {
    let max = 1 << 30;
    let mut stream = ((1_u32 << 30) - 1).to_le_bytes().to_vec();
    stream.extend_from_slice(&[0; 1000]);
    let mut reader = FrameReader::new(&stream[..], max);
    assert!(matches!(
        reader.next_message::<FromWorker>(),
        Err(Error::Protocol(_))
    ));
    assert!(
        reader.allocated() <= 2 * INITIAL_BUFFER,
        "{}",
        reader.allocated()
    );
}

#[test]
fn the_buffer_shrinks_back_after_a_large_frame() {
    let payload = vec![7_u8; 40 * INITIAL_BUFFER];
    let stream = frame_of(&FromWorker::InitDone, &payload);
    let mut reader = FrameReader::new(&stream[..], 1 << 22);
    assert_eq!(
        reader
            .next_message::<FromWorker>()
            .unwrap()
            .unwrap()
            .1
            .len(),
        payload.len()
    );
    assert!(reader.allocated() > payload.len());
    assert!(reader.next_message::<FromWorker>().unwrap().is_none());
    assert!(reader.allocated() <= INITIAL_BUFFER);
}

#[test]
fn oversized_outgoing_frames_are_invalid_arguments() {
    let err = encode_frame(&ToWorker::Init { initializer: 0 }, 8, |out| {
        out.extend_from_slice(&[0; 100]);
        Ok(())
    })
    .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

#[test]
fn a_frame_that_cannot_be_appended_leaves_the_buffer_as_it_was() {
    let mut out = frame_of(&FromWorker::InitDone, &[]);
    let before = out.clone();
    let err = append_frame(&mut out, &FromWorker::InitDone, 8, |out| {
        out.extend_from_slice(&[0; 100]);
        Ok(())
    });
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    assert_eq!(out, before);
}

#[test]
fn encoding_into_a_vector_matches_postcard() {
    let value = (u64::MAX, -3_i64, "text", vec![Some(1_u16), None]);
    let mut out = vec![7];
    encode_into(&value, &mut out).unwrap();
    assert_eq!(out[1..], postcard::to_stdvec(&value).unwrap()[..]);
}
