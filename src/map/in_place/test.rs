use super::*;
use std::sync::Arc;

#[test]
fn runs_committed_in_order_make_the_vector() {
    let mut buffer = OutputBuffer::with_capacity(5).unwrap();
    let first = buffer.claim(2).unwrap();
    let second = buffer.claim(3).unwrap();
    let (second, panic) = second.fill(vec![2, 3, 4], |x: i32| x.to_string());
    assert!(panic.is_none());
    let (first, _) = first.fill(vec![0, 1], |x: i32| x.to_string());
    buffer.commit(first);
    buffer.commit(second);
    assert_eq!(buffer.into_vec(), ["0", "1", "2", "3", "4"]);
}

#[test]
fn no_claim_succeeds_after_one_past_the_capacity() {
    let mut buffer = OutputBuffer::<u8>::with_capacity(3).unwrap();
    assert!(buffer.claim(2).is_some());
    assert!(buffer.claim(2).is_none());
    // It would fit, but it would come after values that return by value.
    assert!(buffer.claim(1).is_none());
}

#[test]
fn values_after_a_spill_are_appended_in_order() {
    let mut buffer = OutputBuffer::with_capacity(3).unwrap();
    let (run, _) = buffer.claim(2).unwrap().fill(vec![0, 1], |x: u8| x);
    assert!(buffer.claim(2).is_none());
    buffer.commit(run);
    buffer.append(vec![2, 3]);
    buffer.append(vec![4]);
    assert_eq!(buffer.into_vec(), [0, 1, 2, 3, 4]);
}

#[test]
fn a_panic_keeps_the_prefix_and_dropping_the_run_drops_it() {
    crate::deliberate::silence();
    let tracker = Arc::new(());
    let mut buffer = OutputBuffer::with_capacity(3).unwrap();
    let slots = buffer.claim(3).unwrap();
    let (run, panic) = slots.fill(vec![0, 1, 2], |x: i32| {
        if x == 2 {
            crate::deliberate::panic_with("item two fails");
        }
        Arc::clone(&tracker)
    });
    assert!(panic.is_some());
    assert_eq!(run.len(), 2);
    assert_eq!(Arc::strong_count(&tracker), 3);
    drop(run);
    assert_eq!(Arc::strong_count(&tracker), 1);
    assert!(buffer.into_vec().is_empty());
}

#[test]
fn dropping_the_buffer_drops_committed_values_only() {
    let tracker = Arc::new(());
    let mut buffer = OutputBuffer::with_capacity(4).unwrap();
    let (run, _) = buffer
        .claim(2)
        .unwrap()
        .fill(vec![(); 2], |()| Arc::clone(&tracker));
    buffer.commit(run);
    let _unused = buffer.claim(2).unwrap();
    assert_eq!(Arc::strong_count(&tracker), 3);
    drop(buffer);
    assert_eq!(Arc::strong_count(&tracker), 1);
}

#[test]
#[should_panic(expected = "input order")]
fn a_run_out_of_order_is_refused() {
    let mut buffer = OutputBuffer::with_capacity(2).unwrap();
    let _first = buffer.claim(1).unwrap();
    let (second, _) = buffer.claim(1).unwrap().fill(vec![1], |x: u8| x);
    buffer.commit(second);
}

#[test]
fn appended_values_follow_committed_ones() {
    let mut buffer = OutputBuffer::with_capacity(2).unwrap();
    let (run, _) = buffer.claim(1).unwrap().fill(vec![1], |x: u8| x);
    buffer.commit(run);
    buffer.append(vec![2, 3]);
    assert_eq!(buffer.into_vec(), [1, 2, 3]);
}

#[test]
fn an_impossible_capacity_is_an_error() {
    assert!(matches!(
        OutputBuffer::<u64>::with_capacity(usize::MAX),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn zero_sized_values_are_counted() {
    let mut buffer = OutputBuffer::with_capacity(3).unwrap();
    let (run, _) = buffer.claim(3).unwrap().fill(vec![1, 2, 3], |_: u8| ());
    buffer.commit(run);
    assert_eq!(buffer.into_vec().len(), 3);
}
