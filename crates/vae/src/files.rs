//! Reading and writing files that someone else may have planted: the one place where the tool
//! touches the file system for its own files, so that every command keeps the same promises.
//!
//! - **Reads** take regular files only, and only up to a size the caller states: a run folder
//!   whose `config.json` is a FIFO, or whose weights are a link to `/dev/zero`, is refused by
//!   its file type before a byte is read, and a file larger than its cap by its size.
//! - **Writes** are atomic: the bytes go to a new temporary file in the target's own folder,
//!   created exclusively under an unpredictable name (so a planted `x.tmp` link is never
//!   followed), synced, then renamed over the target. Only a regular file (or nothing) is
//!   replaced: a symbolic link, a device node, a FIFO, a socket or a folder at the target is
//!   refused, so nothing outside a run folder is ever overwritten through it and no device
//!   node is replaced by a PNG.
//! - [`write_output`], for a path the user names (`--out`), also writes into a character
//!   device or a FIFO (`--out /dev/null`, a pipe to a viewer): a plain write, nothing
//!   replaced.

use std::fs::{self, File, Metadata};
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Largest JSON configuration read (`config.json`): real ones are under a kilobyte.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest `metrics.jsonl` read: a line is ~300 bytes, so this is far more epochs than
/// [`crate::run::MAX_EPOCHS`].
pub const MAX_METRICS_BYTES: u64 = 64 << 20;

fn file_error(path: &Path, problem: impl Into<String>) -> Error {
    Error::File {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// What a file system entry is, in words, for messages.
fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Opens `path` (following links) for reading, refusing anything but a regular file, and
/// returns it with its size. The open does not block on a FIFO: the type is checked on the
/// opened handle, so nothing can be swapped in between the check and the read.
pub fn open_regular(path: &Path) -> Result<(File, u64)> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let len = ensure_regular(path, &file)?;
    Ok((file, len))
}

/// Refuses an opened `file` that is not a regular file (checked on the handle, so nothing can
/// be swapped in after the check); returns its size.
fn ensure_regular(path: &Path, file: &File) -> Result<u64> {
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(file_error(
            path,
            format!("is {}, expected a regular file", kind_of(&meta)),
        ));
    }
    Ok(meta.len())
}

/// A character device or a FIFO: what takes a plain write rather than a replacement.
fn is_stream(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() || meta.file_type().is_fifo()
}

/// Reads the whole regular file at `path`, refusing one larger than `limit` bytes before
/// reading it (and stopping at the limit should it grow while being read).
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let (file, len) = open_regular(path)?;
    if len > limit {
        return Err(too_large(path, len, limit));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large(path, bytes.len() as u64, limit));
    }
    Ok(bytes)
}

/// [`read_limited`], as UTF-8 text.
pub fn read_text_limited(path: &Path, limit: u64) -> Result<String> {
    String::from_utf8(read_limited(path, limit)?).map_err(|_| file_error(path, "is not UTF-8 text"))
}

fn too_large(path: &Path, len: u64, limit: u64) -> Error {
    file_error(
        path,
        format!("holds {len} bytes, more than the {limit} this file may hold"),
    )
}

/// Refuses to replace anything at `path` but a regular file (nothing there is fine).
fn ensure_replaceable(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(meta) => Err(file_error(
            path,
            format!("is {}: refusing to replace it with a regular file", kind_of(&meta)),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// Writes `bytes` to `path` so that `path` holds either its old content or the new, never a
/// mix, and never anything but a regular file: see the module's notes.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    ensure_replaceable(path)?;
    let name = path
        .file_name()
        .ok_or_else(|| file_error(path, "names no file"))?
        .to_string_lossy();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        // What `File::create` would give (the umask still applies), not tempfile's 0600: a
        // run folder stays as readable as it was.
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    // On any error below, dropping `tmp` deletes the temporary file.
    tmp.write_all(bytes).map_err(|e| Error::io(path, e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    // Makes the rename itself durable; not all file systems allow opening a directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to a path the user named: into a character device or a FIFO as a plain
/// write (`/dev/null`, a pipe), anywhere else as [`write_atomic`] does.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    if !fs::metadata(path).is_ok_and(|m| is_stream(&m)) {
        return write_atomic(path, bytes);
    }
    let mut file = File::options().write(true).open(path).map_err(|e| Error::io(path, e))?;
    // A stream takes what it is given: check its type on the opened handle too.
    if !file.metadata().is_ok_and(|m| is_stream(&m)) {
        return Err(file_error(path, "changed while being opened"));
    }
    file.write_all(bytes).map_err(|e| Error::io(path, e))
}

/// Opens (creating it if needed) a small file the tool keeps for itself, such as a lock,
/// without following a symbolic link planted in its place.
pub fn open_own_file(path: &Path) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => file_error(path, "is a symbolic link: refusing to open it"),
            _ => Error::io(path, e),
        })?;
    ensure_regular(path, &file)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_write_leaves_the_file_alone_in_its_folder_and_as_readable_as_create_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"], "a temporary file was left behind");
        // The umask of a test run is the user's; File::create would give the same.
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&plain));
    }

    #[test]
    fn reads_stop_at_their_cap_and_at_anything_but_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, [0xffu8; 100]).unwrap();
        assert_eq!(read_limited(&path, 100).unwrap().len(), 100);
        let error = read_limited(&path, 99).unwrap_err().to_string();
        assert!(error.contains("holds 100 bytes, more than the 99"), "{error}");
        let error = read_limited(dir.path(), 99).unwrap_err().to_string();
        assert!(error.contains("is a directory, expected a regular file"), "{error}");
        let error = read_text_limited(&path, 100).map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("is not UTF-8 text"), "{error}");
        // A file whose size says less than it holds (procfs says 0) is still stopped at the
        // cap while being read, not cut short.
        let error = read_limited(Path::new("/proc/self/status"), 10)
            .unwrap_err()
            .to_string();
        assert!(error.contains("holds 11 bytes, more than the 10"), "{error}");
    }

    #[test]
    fn only_a_regular_file_or_nothing_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_atomic(dir.path(), b"x").unwrap_err().to_string();
        assert!(error.contains("is a directory: refusing to replace it"), "{error}");
        let target = dir.path().join("target");
        fs::write(&target, "precious").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = write_atomic(&link, b"x").unwrap_err().to_string();
        assert!(error.contains("is a symbolic link: refusing to replace it"), "{error}");
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        let new = dir.path().join("new");
        write_atomic(&new, b"fresh").unwrap();
        assert_eq!(fs::read(&new).unwrap(), b"fresh");
        // A path under a file cannot be looked at: its error is the file system's.
        let error = write_atomic(&target.join("below"), b"x").unwrap_err().to_string();
        assert!(error.contains("target/below"), "{error}");
    }

    #[test]
    fn the_temporary_file_is_made_beside_its_target() {
        // On another file system than the working folder, a temporary made anywhere else
        // could not be renamed into place.
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            let dir = tempfile::tempdir_in(shm).unwrap();
            let path = dir.path().join("a");
            write_atomic(&path, b"here").unwrap();
            assert_eq!(fs::read(&path).unwrap(), b"here");
        }
        // A bare file name is in the working folder.
        let bare = Path::new(".files-test-bare-name.tmp");
        write_atomic(bare, b"bare").unwrap();
        let read = fs::read(bare);
        fs::remove_file(bare).unwrap();
        assert_eq!(read.unwrap(), b"bare");
    }

    #[test]
    fn an_output_replaces_a_file_whole_and_writes_into_a_device() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.png");
        fs::write(&path, "a longer old content").unwrap();
        write_output(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let fresh = dir.path().join("fresh.png");
        write_output(&fresh, b"made").unwrap();
        assert_eq!(fs::read(&fresh).unwrap(), b"made");
        // `/dev/null` takes the bytes and stays the device it is.
        write_output(Path::new("/dev/null"), b"gone").unwrap();
        assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_lock_file_is_never_opened_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "precious").unwrap();
        let link = dir.path().join(".lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = open_own_file(&link).unwrap_err().to_string();
        assert!(error.contains("is a symbolic link: refusing to open it"), "{error}");
        // A dangling link is not followed into creating its target either.
        let dangling = dir.path().join(".lock2");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(open_own_file(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }
}
