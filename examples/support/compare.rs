//! The opt-in check of a parallel run against a serial one.

use std::hash::{DefaultHasher, Hash, Hasher};

/// A 64-bit digest of one output, so that a long run can be compared item by item without
/// keeping its outputs.
pub fn fingerprint<T: Hash + ?Sized>(output: &T) -> u64 {
    let mut hasher = DefaultHasher::new();
    output.hash(&mut hasher);
    hasher.finish()
}

/// Positions where `a` and `b` differ, including those present in only one of them.
pub fn differing<T: PartialEq>(a: &[T], b: &[T]) -> Vec<usize> {
    let common = a.len().min(b.len());
    (0..common)
        .filter(|&i| a[i] != b[i])
        .chain(common..a.len().max(b.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_names_changed_and_missing_positions() {
        assert_eq!(differing(&[1, 2, 3], &[1, 2, 3]), Vec::<usize>::new());
        assert_eq!(differing(&[1, 2, 3], &[1, 5, 3, 4]), [1, 3]);
        assert_eq!(differing(&[1, 5, 3, 4], &[1, 2]), [1, 2, 3]);
        assert_eq!(fingerprint("row"), fingerprint("row"));
        assert_ne!(fingerprint("row"), fingerprint("rows"));
    }
}
