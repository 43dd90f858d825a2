//! What the binary's tests share: `vae ARGS` run in a folder of its own and read like a
//! transcript, and `vae serve` started for a test or a benchmark, stopped when dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// `vae ARGS` in `dir`, with its own data folder and the canonical mirrors.
pub fn vae_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vae"));
    command
        .args(args)
        .current_dir(dir)
        .env("VAE_DATA_DIR", dir.join("data"))
        .env_remove("VAE_MIRROR");
    command
}

pub fn vae(dir: &Path, args: &[&str]) -> Output {
    vae_command(dir, args).output().expect("the binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A failure with a one-line message that mentions `needle`.
/// Trains the small model of [`SMALL`] for one epoch into `dir/out`.
pub fn train_small(dir: &Path, out: &str) {
    let o = vae(dir, &[&["train", "--epochs", "1", "--out", out], SMALL].concat());
    assert!(o.status.success(), "{}", stderr(&o));
}

pub fn assert_refused(o: &Output, needle: &str) {
    assert!(!o.status.success(), "succeeded: {}", stderr(o));
    let err = stderr(o);
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
}

/// Says a test skipped because it needs root, or fails it where `VAE_REQUIRE_ROOT=1` (CI,
/// which runs as root) forbids skipping.
pub fn skip_without_root(what: &str) {
    if std::env::var("VAE_REQUIRE_ROOT").is_ok_and(|v| v == "1") {
        panic!("{what} needs root, and VAE_REQUIRE_ROOT=1 forbids skipping");
    }
    eprintln!("skipped: {what} needs root");
}

/// A small model that trains an epoch of the built-in sample in about a second.
pub const SMALL: &[&str] = &[
    "--hidden",
    "64",
    "--latent",
    "4",
    "--batch-size",
    "256",
    "--threads",
    "2",
];

/// Kills the process when dropped, however the test ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `vae serve RUNS... --port 0` in `dir`: the server and the URL it printed.
pub fn serve(dir: &Path, runs: &[String]) -> (Killed, String) {
    serve_with(dir, runs, &[])
}

/// [`serve`] with more flags.
pub fn serve_with(dir: &Path, runs: &[String], flags: &[&str]) -> (Killed, String) {
    let mut server = Killed(
        Command::new(env!("CARGO_BIN_EXE_vae"))
            .arg("serve")
            .args(runs)
            .args(["--port", "0", "--threads", "2"])
            .args(flags)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut url = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "the server printed {url:?}");
    (server, url)
}

/// The built-in sample's first `n` training digits at `side` x `side` (nearest pixel, from
/// `offset` into each 28x28 cell), orange ink on blue, as N x side x side x 3 bytes; and the
/// digits themselves, for their labels.
pub fn tinted_digits(n: usize, side: usize, offset: usize) -> (Vec<u8>, vae::data::Split) {
    use vae::data::{DataDirs, DatasetName, DatasetSpec, catalog};
    let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
    let digits = data.train.take(n);
    let mut rgb = Vec::new();
    for i in 0..digits.len() {
        let image = digits.images.image(i).unwrap();
        for y in 0..side {
            for x in 0..side {
                let ink = image[(y * 28 / side + offset) * 28 + x * 28 / side + offset] as u32;
                let mix = |on: u32, off: u32| ((on * ink + off * (255 - ink)) / 255) as u8;
                rgb.extend([mix(255, 30), mix(140, 60), mix(0, 160)]);
            }
        }
    }
    (rgb, digits)
}

/// `dir/demo/report.json`, and the names of its models in order.
pub fn demo_report(dir: &Path) -> (serde_json::Value, Vec<String>) {
    let numbers: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo/report.json")).unwrap()).unwrap();
    let names = numbers["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    (numbers, names)
}
