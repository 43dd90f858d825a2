//! Helpers shared by the integration tests: the real data beside the checkout, a small slice
//! of the built-in sample, and a file server on 127.0.0.1.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use std::sync::atomic::AtomicBool;

use vae::data::{DataDirs, Dataset, DatasetName, DatasetSpec, catalog};
use vae::run::{RunConfig, RunDir};
use vae::train::{Outcome, Trainer};

/// Says a test skipped because `why`, or fails it where `VAE_REQUIRE_DATA=1` (CI, which
/// has every data set) forbids skipping.
pub fn skip_without_data(why: &str) {
    if std::env::var("VAE_REQUIRE_DATA").is_ok_and(|v| v == "1") {
        panic!("{why}, and VAE_REQUIRE_DATA=1 forbids skipping");
    }
    eprintln!("skipped: {why}");
}

/// `../shared/data/mnist` beside the checkout: canonical MNIST files, for the tests that
/// compare against them. `None` (and the test says it skipped) where it is absent.
pub fn shared_mnist() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist");
    if dir.is_dir() {
        Some(dir)
    } else {
        skip_without_data(&format!("{} is absent", dir.display()));
        None
    }
}

/// The built-in sample.
pub fn sample() -> Dataset {
    catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap()
}

/// The first `train` and `test` images of the built-in sample: real digits, small enough
/// for a test to train on in a second.
pub fn small_sample(train: usize, test: usize) -> Dataset {
    let data = sample();
    Dataset::labelled("mnist-sample".into(), data.train.take(train), data.test.take(test))
}

/// A new run trained to the end of its epochs on `data`.
pub fn train(run: &RunDir, config: RunConfig, data: &Dataset) -> Trainer {
    let mut trainer = Trainer::new(run.clone(), config).unwrap();
    let outcome = trainer.train(data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(outcome, Outcome::Finished);
    trainer
}

/// Serves `files` (name → bytes) over HTTP/1.1 on 127.0.0.1 until the test process ends;
/// unknown names get a 404. Returns the base URL.
pub fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let files = Arc::new(files);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let files = files.clone();
            thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                if reader.read_line(&mut request).is_err() {
                    return;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/');
                let _ = match files.get(path) {
                    Some(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|_| stream.write_all(body)),
                    None => {
                        stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    }
                };
            });
        }
    });
    url
}

/// A URL on 127.0.0.1 where nothing listens.
pub fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    url
}
