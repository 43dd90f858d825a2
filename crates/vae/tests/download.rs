//! Downloads against a server on 127.0.0.1 serving the canonical MNIST files, one mirror
//! corrupted: only verified files ever land under their real names.

mod common;

use std::collections::HashMap;

use vae::data::DatasetName;
use vae::data::download::{DownloadEvent, RemoteFile, fetch_files, remote_files};

/// Files to fetch and the bytes a mirror serves for them.
type Served = (Vec<RemoteFile>, HashMap<String, Vec<u8>>);

/// The canonical MNIST files present beside the checkout (all but the 9.9 MB training
/// images), with their real sizes and checksums, and their bytes.
fn canonical() -> Option<Served> {
    let dir = common::shared_mnist()?;
    let files: Vec<RemoteFile> = remote_files(DatasetName::Mnist)
        .iter()
        .copied()
        .filter(|f| dir.join(f.name).is_file())
        .collect();
    assert_eq!(
        files.len(),
        3,
        "t10k images, t10k labels and train labels are expected beside the checkout"
    );
    let bytes = files
        .iter()
        .map(|f| (f.name.to_string(), std::fs::read(dir.join(f.name)).unwrap()))
        .collect();
    Some((files, bytes))
}

fn corrupted(files: &HashMap<String, Vec<u8>>) -> HashMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(name, bytes)| {
            let mut bytes = bytes.clone();
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x01;
            (name.clone(), bytes)
        })
        .collect()
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn downloads_verify_and_a_second_fetch_keeps_the_files() {
    let Some((files, bytes)) = canonical() else {
        return;
    };
    let mirror = common::serve(bytes.clone());
    let target = tempfile::tempdir().unwrap();
    let mut done = Vec::new();
    fetch_files(&files, target.path(), std::slice::from_ref(&mirror), &mut |e| {
        if let DownloadEvent::Done { file } = e {
            done.push(file.to_string())
        }
    })
    .unwrap();
    assert_eq!(done.len(), 3);
    for f in &files {
        assert_eq!(std::fs::read(target.path().join(f.name)).unwrap(), bytes[f.name]);
    }
    let mut verified = 0;
    fetch_files(&files, target.path(), &[mirror], &mut |e| {
        if let DownloadEvent::Verified { .. } = e {
            verified += 1
        }
    })
    .unwrap();
    assert_eq!(verified, 3);
}

#[test]
fn a_corrupt_mirror_is_skipped_for_the_next() {
    let Some((files, bytes)) = canonical() else {
        return;
    };
    let bad = common::serve(corrupted(&bytes));
    let good = common::serve(bytes.clone());
    let target = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    fetch_files(&files, target.path(), &[bad, good], &mut |e| {
        if let DownloadEvent::MirrorFailed { problem, .. } = e {
            failures.push(problem.to_string())
        }
    })
    .unwrap();
    assert_eq!(failures.len(), 3);
    assert!(
        failures.iter().all(|p| p.starts_with("checksum mismatch")),
        "{failures:?}"
    );
    let mut names = leftovers(target.path());
    names.sort();
    assert_eq!(
        names,
        [
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz",
            "train-labels-idx1-ubyte.gz"
        ]
    );
}

#[test]
fn only_corrupt_or_dead_mirrors_fail_and_leave_nothing_behind() {
    let Some((files, bytes)) = canonical() else {
        return;
    };
    let bad = common::serve(corrupted(&bytes));
    let dead = common::dead_url();
    let target = tempfile::tempdir().unwrap();
    let error = fetch_files(&files, target.path(), &[bad.clone(), dead.clone()], &mut |_| {})
        .unwrap_err()
        .to_string();
    let first = files[0].name;
    assert!(error.contains(&format!("download of {first} failed")), "{error}");
    assert!(error.contains(&format!("{bad}{first} (checksum mismatch")), "{error}");
    assert!(error.contains(&format!("{dead}{first} (")), "{error}");
    assert!(error.contains("VAE_MIRROR"), "{error}");
    assert!(leftovers(target.path()).is_empty(), "{:?}", leftovers(target.path()));
}

#[test]
fn a_missing_file_on_the_mirror_is_a_clear_failure() {
    let Some((files, _)) = canonical() else {
        return;
    };
    let empty = common::serve(HashMap::new());
    let target = tempfile::tempdir().unwrap();
    let error = fetch_files(&files, target.path(), &[empty], &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(error.contains("404"), "{error}");
}
