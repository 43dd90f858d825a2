//! Downloading a named dataset from its canonical mirrors.
//!
//! Each file is fetched from the mirrors in turn, streamed to `NAME.part` while its SHA-256 is
//! computed, checked against the canonical file's checksum, and only then renamed into place:
//! a dataset directory never holds a partial or corrupt file under a real name.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::catalog::DatasetName;
use crate::error::{Error, Result};

/// A file of a dataset as its publishers distribute it.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFile {
    pub name: &'static str,
    pub bytes: u64,
    pub sha256: &'static str,
}

const MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        bytes: 9_912_422,
        sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        bytes: 28_881,
        sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        bytes: 1_648_877,
        sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        bytes: 4_542,
        sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
];

const FASHION_MNIST_FILES: [RemoteFile; 4] = [
    RemoteFile {
        name: "train-images-idx3-ubyte.gz",
        bytes: 26_421_880,
        sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    },
    RemoteFile {
        name: "train-labels-idx1-ubyte.gz",
        bytes: 29_515,
        sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    },
    RemoteFile {
        name: "t10k-images-idx3-ubyte.gz",
        bytes: 4_422_102,
        sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    },
    RemoteFile {
        name: "t10k-labels-idx1-ubyte.gz",
        bytes: 5_148,
        sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
];

/// The canonical files of a downloadable dataset (none for the embedded sample).
pub fn remote_files(name: DatasetName) -> &'static [RemoteFile] {
    match name {
        DatasetName::MnistSample => &[],
        DatasetName::Mnist => &MNIST_FILES,
        DatasetName::FashionMnist => &FASHION_MNIST_FILES,
    }
}

/// The mirrors tried in turn, each a base URL the file names are appended to.
pub fn default_mirrors(name: DatasetName) -> Vec<String> {
    let mirrors: &[&str] = match name {
        DatasetName::MnistSample => &[],
        DatasetName::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        DatasetName::FashionMnist => &[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
    };
    mirrors.iter().map(|m| m.to_string()).collect()
}

/// What a download reports as it goes, for a progress display.
#[derive(Clone, Debug)]
pub enum DownloadEvent<'a> {
    /// A file is already present and verified.
    Verified { file: &'a str },
    /// A transfer begins.
    Start { file: &'a str, url: &'a str, bytes: u64 },
    /// Bytes received so far of the current transfer.
    Progress { file: &'a str, received: u64 },
    /// A mirror failed; the next one is tried.
    MirrorFailed { url: &'a str, problem: &'a str },
    /// A file arrived and was verified.
    Done { file: &'a str },
}

/// Downloads the files of `name` into `dir` from `mirrors` (tried in turn), verifying each.
/// Files already present with the right checksum are kept.
pub fn fetch(
    name: DatasetName,
    dir: &Path,
    mirrors: &[String],
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<PathBuf> {
    let files = remote_files(name);
    if files.is_empty() {
        return Err(Error::Dataset(format!("{name} is built in: nothing to download")));
    }
    fetch_files(files, dir, mirrors, on_event)
}

/// Downloads `files` into `dir` from `mirrors` (tried in turn), verifying each against its
/// size and SHA-256. Files already present with the right checksum are kept.
pub fn fetch_files(
    files: &[RemoteFile],
    dir: &Path,
    mirrors: &[String],
    on_event: &mut dyn FnMut(DownloadEvent),
) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(30)))
        .build()
        .into();
    for file in files {
        let target = dir.join(file.name);
        if target.is_file() && sha256_of(&target)? == file.sha256 {
            on_event(DownloadEvent::Verified { file: file.name });
            continue;
        }
        let mut problems = Vec::new();
        let mut done = false;
        for mirror in mirrors {
            let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
            match fetch_one(&agent, &url, file, &target, on_event) {
                Ok(()) => {
                    on_event(DownloadEvent::Done { file: file.name });
                    done = true;
                    break;
                }
                Err(problem) => {
                    on_event(DownloadEvent::MirrorFailed {
                        url: &url,
                        problem: &problem,
                    });
                    problems.push(format!("{url} ({problem})"));
                }
            }
        }
        if !done {
            return Err(Error::Download {
                file: file.name.into(),
                problem: format!(
                    "tried {}; if this machine is offline, copy the four IDX files into {} or set VAE_MIRROR to a reachable mirror",
                    problems.join(", "),
                    dir.display()
                ),
            });
        }
    }
    Ok(dir.to_path_buf())
}

/// One file from one URL into `target` via `target.part`; the error is a short reason.
fn fetch_one(
    agent: &ureq::Agent,
    url: &str,
    file: &RemoteFile,
    target: &Path,
    on_event: &mut dyn FnMut(DownloadEvent),
) -> std::result::Result<(), String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    on_event(DownloadEvent::Start {
        file: file.name,
        url,
        bytes: file.bytes,
    });
    // Never read more than the canonical size and one byte: a bigger answer is wrong anyway.
    let mut body = response.into_body().into_reader().take(file.bytes + 1);
    // A temporary file of our own beside the target (`.NAME.part…`), so two downloads at once
    // never write into each other's file; it vanishes unless persisted.
    let dir = target.parent().unwrap_or(Path::new("."));
    let mut part = tempfile::Builder::new()
        .prefix(&format!(".{}.", file.name))
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0u64;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("transfer broke off after {received} bytes: {e}")),
        };
        hasher.update(&buf[..n]);
        part.write_all(&buf[..n])
            .map_err(|e| format!("{}: {e}", part.path().display()))?;
        received += n as u64;
        on_event(DownloadEvent::Progress {
            file: file.name,
            received,
        });
    }
    let digest = hex(&hasher.finalize());
    if received != file.bytes || digest != file.sha256 {
        return Err(format!(
            "checksum mismatch: got {received} bytes with SHA-256 {digest}, expected {} bytes with {}",
            file.bytes, file.sha256
        ));
    }
    part.as_file()
        .sync_all()
        .map_err(|e| format!("{}: {e}", part.path().display()))?;
    part.persist(target)
        .map_err(|e| format!("{}: {}", target.display(), e.error))?;
    Ok(())
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_of(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(path, e)),
        }
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
