//! The held-out test split of data that brings none: a share of each class, chosen by a
//! hash of each item's key (a file's relative path, a row's index), so that it depends on
//! the keys alone, never on the order items were listed in, and an item keeps its side when
//! others are added.

use sha2::{Digest, Sha256};

/// The split's hash of a key: the first 8 bytes of its SHA-256.
pub fn key_hash(key: &str) -> u64 {
    let digest = Sha256::digest(key.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Whether each item goes to the test split: `test_fraction` of each class (rounded, at
/// least one of a class of two or more, never the last one), those whose keys hash lowest
/// (ties broken by the key). `labels[i]` must be below `classes`.
pub fn held_out(keys: &[&str], labels: &[u8], classes: usize, test_fraction: f64) -> Vec<bool> {
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_cached_key(|&i| (key_hash(keys[i]), keys[i]));
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
    for i in order {
        by_class[labels[i] as usize].push(i);
    }
    let mut test = vec![false; keys.len()];
    for class in by_class {
        let n = class.len();
        let held = if n < 2 {
            0
        } else {
            ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1)
        };
        for &i in &class[..held] {
            test[i] = true;
        }
    }
    test
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_share_of_each_class_whatever_the_order() {
        let keys: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        let labels: Vec<u8> = (0..100).map(|i| (i % 3 == 0) as u8).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let test = held_out(&refs, &labels, 2, 0.2);
        let held = |class: u8| (0..100).filter(|&i| test[i] && labels[i] == class).count();
        assert_eq!((held(0), held(1)), (13, 7), "20% of 66 and of 34, rounded");
        let mut reversed: Vec<usize> = (0..100).rev().collect();
        reversed.rotate_left(17);
        let keys_r: Vec<&str> = reversed.iter().map(|&i| refs[i]).collect();
        let labels_r: Vec<u8> = reversed.iter().map(|&i| labels[i]).collect();
        let test_r = held_out(&keys_r, &labels_r, 2, 0.2);
        for (j, &i) in reversed.iter().enumerate() {
            assert_eq!(test_r[j], test[i], "item {i} keeps its side");
        }
        assert_eq!(held_out(&["a"], &[0], 1, 0.5), vec![false], "a lone item trains");
    }
}
