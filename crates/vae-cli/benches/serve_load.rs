//! Load on `vae serve`: first one client alone (the round trip a moving mouse feels), then 32
//! clients on loopback, each with its own keep-alive connection, posting single-code decodes
//! as fast as answers come back. Bounded in requests (200 per client) and in time (60 s).
//! Prints requests per second and latency percentiles.
//!
//! `cargo bench -p vae-cli --bench serve_load` (trains a small run first, in a temporary folder).

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CLIENTS: usize = 32;
const REQUESTS_PER_CLIENT: usize = 200;
const DEADLINE: Duration = Duration::from_secs(60);

fn main() {
    let vae = env!("CARGO_BIN_EXE_vae");
    let dir = tempfile::tempdir().unwrap();
    // The classic body (784-400-2): what a user explores.
    let trained = Command::new(vae)
        .args([
            "train", "--kind", "vae", "--latent", "2", "--epochs", "1", "--out", "vae-2",
        ])
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(trained.success(), "training the run to serve failed");
    let (_server, url) = support::serve(dir.path(), &["vae-2".to_string()]);
    let decode = format!("{url}api/decode");

    for clients in [1, CLIENTS] {
        load(&decode, clients);
    }
}

fn load(decode: &str, clients: usize) {
    let errors = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..clients)
        .map(|client| {
            let (decode, errors) = (decode.to_string(), errors.clone());
            std::thread::spawn(move || {
                let agent = ureq::Agent::new_with_defaults();
                let mut latencies = Vec::with_capacity(REQUESTS_PER_CLIENT);
                for i in 0..REQUESTS_PER_CLIENT {
                    if start.elapsed() > DEADLINE {
                        break;
                    }
                    // A different point each time, as a moving mouse sends.
                    let t = (client * REQUESTS_PER_CLIENT + i) as f32 * 0.01;
                    let body = format!(r#"{{"model": "vae-2", "z": [[{}, {}]]}}"#, 2.0 * t.sin(), 2.0 * t.cos());
                    let sent = Instant::now();
                    match agent.post(&decode).content_type("application/json").send(&body) {
                        Ok(mut r) if r.status() == 200 => {
                            let _ = r.body_mut().read_to_string();
                            latencies.push(sent.elapsed());
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let count = clients.len();
    let mut latencies: Vec<Duration> = clients.into_iter().flat_map(|c| c.join().unwrap()).collect();
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e3;
    println!(
        "POST /api/decode, {count} concurrent client(s), {} requests in {seconds:.2} s: {:.0} requests/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} errors",
        latencies.len(),
        latencies.len() as f64 / seconds,
        at(0.5),
        at(0.99),
        at(1.0),
        errors.load(Ordering::Relaxed)
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0, "some requests failed");
}
