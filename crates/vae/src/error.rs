//! The library's one error type. Every variant names the file or field at fault and what was
//! expected, so the command line can print it on one line and the user knows what to fix.

use std::path::PathBuf;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not an IDX {kind} file (magic number {found:#010x}, expected {expected:#010x})")]
    IdxMagic {
        path: PathBuf,
        kind: &'static str,
        expected: u32,
        found: u32,
    },

    #[error("{path}: truncated: the header promises {expected} bytes of data, the file holds {found}")]
    IdxTruncated { path: PathBuf, expected: u64, found: u64 },

    #[error("{path}: {problem}")]
    IdxInvalid { path: PathBuf, problem: String },

    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels: they must match")]
    CountMismatch {
        images: PathBuf,
        labels: PathBuf,
        image_count: usize,
        label_count: usize,
    },

    #[error("{0}")]
    Dataset(String),

    /// A data file (an image of a folder, an NPY or CSV file) that cannot be read as data.
    #[error("{path}: {problem}")]
    DataFile { path: PathBuf, problem: String },

    #[error("download of {file} failed: {problem}")]
    Download { file: String, problem: String },

    #[error("{field}: {problem}")]
    Config { field: String, problem: String },

    #[error("{path}: {problem}")]
    Checkpoint { path: PathBuf, problem: String },

    #[error("{op}: shape mismatch: {detail}")]
    Shape { op: &'static str, detail: String },

    #[error(
        "training diverged at epoch {epoch}, batch {batch}: the loss is {loss}; no checkpoint was written from it (try a smaller --lr)"
    )]
    NonFiniteLoss { epoch: usize, batch: usize, loss: f64 },

    #[error("training diverged in epoch {epoch}: {detail}; no checkpoint was written from it (try a smaller --lr)")]
    Diverged { epoch: usize, detail: String },

    #[error("{path}: {problem}")]
    Run { path: PathBuf, problem: String },

    /// A file of the wrong kind (a FIFO, a device, a link where none may be) or size.
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },

    /// A model that an exporter cannot express in the format asked for.
    #[error("{0}")]
    CannotExport(String),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A data file, or a folder of them, that cannot be read as data.
    pub fn data_file(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::DataFile {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A weights or checkpoint file that cannot be what it claims.
    pub fn checkpoint(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        Error::Checkpoint {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// A configuration value out of its range.
    pub fn config(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// Refuses a count outside `range`, naming `field`: the one wording of every documented cap.
pub fn ensure_in_range<T>(field: &str, value: T, range: std::ops::RangeInclusive<T>) -> Result<()>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    Err(Error::config(
        field,
        format!("must be between {} and {}, got {value}", range.start(), range.end()),
    ))
}
