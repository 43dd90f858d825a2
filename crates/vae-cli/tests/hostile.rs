//! The binary against a hostile user: planted links, FIFOs and device nodes in and around run
//! folders, forged files, huge sizes, and clients that hold connections open. Device nodes,
//! FIFOs and links are made inside temporary folders only; the real /dev is never touched.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{FileTypeExt, symlink};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{SMALL, assert_refused, stderr, vae, vae_command};

/// A trained one-epoch run in `d/run`.
fn trained(d: &Path) {
    let out = vae(d, &[&["train", "--epochs", "1", "--out", "run"], SMALL].concat());
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `vae ARGS`, killed and failed if it has not finished within `limit` (a hang is a failure,
/// not a stuck test run).
fn vae_within(d: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = vae_command(d, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("vae {args:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A character device node `major:minor` at `path` (root only: `None` otherwise, and the
/// caller skips what needs it, saying so).
fn mknod_char(path: &Path, major: u32, minor: u32) -> Option<()> {
    if !is_root() {
        support::skip_without_root("making device nodes");
        return None;
    }
    let ok = Command::new("mknod")
        .arg(path)
        .args(["c", &major.to_string(), &minor.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "mknod {}", path.display());
    Some(())
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).unwrap().file_type().is_symlink()
}

#[test]
fn pictures_never_replace_links_folders_or_device_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    std::fs::write(d.join("victim.txt"), "precious").unwrap();

    // A link named as --out, or planted where a picture's default name is: refused, the
    // link and what it points to untouched.
    symlink(d.join("victim.txt"), d.join("link.png")).unwrap();
    assert_refused(
        &vae(d, &["sample", "run", "-n", "4", "--out", "link.png"]),
        "link.png: is a symbolic link: refusing to replace it",
    );
    symlink(d.join("victim.txt"), d.join("run/samples-seed0.png")).unwrap();
    assert_refused(
        &vae(d, &["sample", "run", "-n", "4"]),
        "samples-seed0.png: is a symbolic link",
    );
    assert!(is_symlink(&d.join("link.png")) && is_symlink(&d.join("run/samples-seed0.png")));
    assert_eq!(std::fs::read_to_string(d.join("victim.txt")).unwrap(), "precious");

    std::fs::create_dir(d.join("folder.png")).unwrap();
    assert_refused(
        &vae(d, &["sample", "run", "-n", "4", "--out", "folder.png"]),
        "folder.png: is a directory",
    );

    // A FIFO takes the picture as a plain write and stays a FIFO.
    let fifo = d.join("pipe.png");
    mkfifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = vae(d, &["sample", "run", "-n", "4", "--out", "pipe.png"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(&reader.join().unwrap()[1..4], b"PNG");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());

    // So does a character device (here a null device of our own), which is not replaced.
    let null = d.join("null");
    if mknod_char(&null, 1, 3).is_some() {
        let out = vae(d, &["sample", "run", "-n", "4", "--out", "null"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(std::fs::symlink_metadata(&null).unwrap().file_type().is_char_device());
    }
}

#[test]
fn planted_temporary_links_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    // Links at every name a temporary file of the run had: none may be written through.
    let names = [
        "checkpoint.safetensors",
        "model.safetensors",
        "metrics.jsonl",
        "config.json",
        "samples.png",
        "reconstructions.png",
        "samples-seed0.png",
    ];
    for (i, name) in names.iter().enumerate() {
        let outside = d.join(format!("outside-{i}"));
        std::fs::write(&outside, "precious").unwrap();
        symlink(&outside, d.join("run").join(format!("{name}.tmp"))).unwrap();
    }
    let out = vae(d, &["train", "--resume", "run", "--epochs", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = vae(d, &["sample", "run", "-n", "4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for i in 0..names.len() {
        assert_eq!(
            std::fs::read_to_string(d.join(format!("outside-{i}"))).unwrap(),
            "precious",
            "outside-{i} was written through a planted link"
        );
    }
    for name in names {
        let meta = std::fs::symlink_metadata(d.join("run").join(name)).unwrap();
        assert!(meta.is_file(), "{name} is not a regular file");
    }
    // The run really went on: two epochs of metrics.
    let metrics = std::fs::read_to_string(d.join("run/metrics.jsonl")).unwrap();
    assert_eq!(metrics.lines().count(), 2);
}

#[test]
fn resume_never_destroys_a_trained_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    let model = std::fs::read(d.join("run/model.safetensors")).unwrap();
    let metrics = std::fs::read(d.join("run/metrics.jsonl")).unwrap();
    std::fs::remove_file(d.join("run/checkpoint.safetensors")).unwrap();
    assert_refused(
        &vae(d, &["train", "--resume", "run", "--epochs", "2"]),
        "checkpoint.safetensors: is missing, so the run cannot continue",
    );
    assert_eq!(std::fs::read(d.join("run/model.safetensors")).unwrap(), model);
    assert_eq!(std::fs::read(d.join("run/metrics.jsonl")).unwrap(), metrics);
    // Nor does a new run pointed at it.
    assert_refused(
        &vae(d, &[&["train", "--epochs", "1", "--out", "run"], SMALL].concat()),
        "already holds a run",
    );
    assert_eq!(std::fs::read(d.join("run/model.safetensors")).unwrap(), model);
}

#[test]
fn only_run_folders_are_resumed_and_only_empty_ones_are_trained_into() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_refused(&vae(d, &["train", "--resume", "typo"]), "typo: not a run folder");
    assert!(!d.join("typo").exists(), "--resume created the folder it did not find");
    std::fs::create_dir(d.join("photos")).unwrap();
    assert_refused(&vae(d, &["train", "--resume", "photos"]), "no config.json");

    std::fs::write(d.join("photos/holiday.jpg"), "mine").unwrap();
    assert_refused(
        &vae(d, &[&["train", "--epochs", "1", "--out", "photos"], SMALL].concat()),
        "photos: is not empty (1 entries) and holds no run",
    );
    let entries: Vec<_> = std::fs::read_dir(d.join("photos")).unwrap().collect();
    assert_eq!(entries.len(), 1, "a refused run left files among the user's");
}

#[test]
fn run_files_that_are_not_regular_or_too_large_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    let quick = Duration::from_secs(20);
    let run = d.join("run");
    let config = std::fs::read(run.join("config.json")).unwrap();

    // A FIFO in place of config.json would block a plain read forever.
    std::fs::remove_file(run.join("config.json")).unwrap();
    mkfifo(&run.join("config.json"));
    assert_refused(
        &vae_within(d, &["sample", "run"], quick),
        "config.json: is a FIFO, expected a regular file",
    );
    std::fs::remove_file(run.join("config.json")).unwrap();
    std::fs::write(run.join("config.json"), &config).unwrap();

    // A link to an endless device in place of the weights (our own zero device).
    let zero = d.join("zero");
    if mknod_char(&zero, 1, 5).is_some() {
        std::fs::rename(run.join("model.safetensors"), d.join("model.keep")).unwrap();
        symlink(&zero, run.join("model.safetensors")).unwrap();
        assert_refused(
            &vae_within(d, &["sample", "run"], quick),
            "model.safetensors: is a character device, expected a regular file",
        );
        std::fs::remove_file(run.join("model.safetensors")).unwrap();
        std::fs::rename(d.join("model.keep"), run.join("model.safetensors")).unwrap();
    }

    // A checkpoint far larger than the model's weights can fill (sparse: no disk used).
    let checkpoint = run.join("checkpoint.safetensors");
    std::fs::remove_file(&checkpoint).unwrap();
    std::fs::File::create(&checkpoint).unwrap().set_len(1 << 40).unwrap();
    assert_refused(
        &vae_within(d, &["train", "--resume", "run", "--epochs", "2"], quick),
        "checkpoint.safetensors: holds 1099511627776 bytes, more than the",
    );

    // A dataset file that is a link to a device says so.
    let data = d.join("digits");
    std::fs::create_dir(&data).unwrap();
    for file in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        mkfifo(&data.join(file));
    }
    assert_refused(
        &vae_within(
            d,
            &[&["train", "--dataset", "digits", "--out", "r2"], SMALL].concat(),
            quick,
        ),
        "is a FIFO, expected a regular file",
    );
}

#[test]
fn a_config_asking_for_a_million_threads_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    let config = std::fs::read_to_string(d.join("run/config.json")).unwrap();
    assert!(config.contains("\"threads\": 2"), "{config}");
    std::fs::write(
        d.join("run/config.json"),
        config.replace("\"threads\": 2", "\"threads\": 1000000"),
    )
    .unwrap();
    for args in [&["train", "--resume", "run", "--epochs", "2"][..], &["sample", "run"]] {
        assert_refused(&vae(d, args), "threads: must be between 1 and 256, got 1000000");
    }
}

#[test]
fn sizes_past_their_caps_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    let quick = Duration::from_secs(20);
    for (args, needle) in [
        (
            &["sample", "run", "-n", "100000000"][..],
            "picture: 100000000 images make a picture of",
        ),
        (&["traverse", "run", "--steps", "1000000"], "picture: 4000000 images"),
        (&["interpolate", "run", "--steps", "1000000"], "picture: 1000003 images"),
        (&["interpolate", "run", "--pairs", "100000000"], "picture:"),
        (
            &["eval", "run", "--latent", "--samples", "100000000"],
            "--samples: must be between 2 and 100000",
        ),
        (
            &["eval", "run", "--latent", "--pairs", "100000000"],
            "--pairs: must be between 1 and 100000",
        ),
        (
            &["serve", "run", "--max-connections", "0"],
            "--max-connections: must be between 1 and 4096",
        ),
        (
            &["serve", "run", "--idle-timeout", "0"],
            "--idle-timeout: must be between 1 and 3600",
        ),
    ] {
        assert_refused(&vae_within(d, args, quick), needle);
    }
}

/// Sends `request` on a new connection and returns the status code of the answer.
fn status_of(addr: &str, request: &str) -> u16 {
    answer_to(addr, request.as_bytes()).0
}

/// Sends `request` on a new connection: the answer's status code and its whole text.
fn answer_to(addr: &str, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer (413) and close before a long body is all sent.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    (status, answer)
}

#[test]
fn the_server_closes_idle_connections_bounds_them_and_answers_only_to_loopback_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    trained(d);
    let (_server, url) = support::serve_with(
        d,
        &["run".to_string()],
        &["--idle-timeout", "1", "--max-connections", "2"],
    );
    let addr = url.trim_start_matches("http://").trim_end_matches('/').to_string();

    // A connection that never sends a request is closed by the server.
    let mut idle = TcpStream::connect(&addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let start = Instant::now();
    let mut byte = [0u8; 1];
    assert_eq!(idle.read(&mut byte).unwrap(), 0, "the idle connection got data");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "closed only after {:?}",
        start.elapsed()
    );

    // Two idle connections fill the server; a third is answered once they are closed.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let get = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&addr, &get), 200);
    assert!(
        start.elapsed() > Duration::from_millis(500),
        "answered beside two held connections after {:?}",
        start.elapsed()
    );
    drop(held);

    // DNS rebinding: a request addressed to another name is refused.
    let foreign = "GET / HTTP/1.1\r\nHost: attacker.example:80\r\nConnection: close\r\n\r\n";
    assert_eq!(status_of(&addr, foreign), 403);
    let port = addr.rsplit(':').next().unwrap();
    let local = format!("GET / HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    assert_eq!(status_of(&addr, &local), 200);

    // A body a cross-site form could send (text/plain) is not read as JSON.
    let body = r#"{"model":"run","z":[[0,0,0,0]]}"#;
    let post = |content_type: &str| {
        format!(
            "POST /api/decode HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    assert_eq!(status_of(&addr, &post("text/plain")), 415);
    assert_eq!(status_of(&addr, &post("application/json; charset=utf-8")), 200);

    // A route asked with the other method gets a 405 naming the one it answers, with an
    // Allow header; a path that is no route gets a 404; both as JSON errors.
    let (status, text) = answer_to(
        &addr,
        format!("GET /api/decode HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 405, "{text}");
    assert!(text.to_ascii_lowercase().contains("allow: post"), "{text}");
    assert!(
        text.contains(r#"{"error":"GET /api/decode: this route answers POST"}"#),
        "{text}"
    );
    let (status, text) = answer_to(
        &addr,
        post("application/json")
            .replace("/api/decode", "/api/models")
            .as_bytes(),
    );
    assert_eq!(status, 405, "{text}");
    assert!(text.contains("this route answers GET"), "{text}");
    let (status, text) = answer_to(
        &addr,
        format!("GET /api/nothing HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert_eq!(status, 404, "{text}");
    assert!(
        text.contains(r#"{"error":"GET /api/nothing: no such route"}"#),
        "{text}"
    );

    // A body declared larger than 1 MiB is refused before it is read; one that never
    // arrives in full times out with the idle timeout.
    let large = format!(
        "POST /api/decode HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(status_of(&addr, &large), 413);
    // Undeclared (chunked), the body is cut off at the cap.
    let chunk = format!("{:x}\r\n{}\r\n", 1 << 16, "x".repeat(1 << 16));
    let chunked = format!(
        "POST /api/decode HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}0\r\n\r\n",
        chunk.repeat(20)
    );
    let (status, text) = answer_to(&addr, chunked.as_bytes());
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("request body: larger than 1048576 bytes"), "{text}");
    let start = Instant::now();
    let partial = format!(
        "POST /api/decode HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nConnection: close\r\n\r\n{{\"model\""
    );
    assert_eq!(status_of(&addr, &partial), 408);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "timed out only after {:?}",
        start.elapsed()
    );
}
