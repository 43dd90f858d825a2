//! `vae serve` in a real browser: headless Chromium driven over WebDriver (chromedriver), the
//! way a user moves the mouse over the latent map and draws a digit on the pad.
//!
//! Needs Debian's `chromium` and `chromium-driver`; without them the test says it skipped,
//! unless `VAE_REQUIRE_BROWSER` is set (CI sets it), where their absence is a failure.
//!
//! `scripts/screenshot-explorer.sh` runs it on trained runs of your choice
//! (`VAE_EXPLORER_RUNS`, absolute paths) and keeps the screenshot (`VAE_EXPLORER_SCREENSHOT`).

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The WebDriver name of an element reference in JSON.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A WebDriver session on a chromedriver.
struct Browser {
    base: String,
    agent: ureq::Agent,
}

impl Browser {
    fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let response = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => self.agent.post(&url).send_json(&body),
        };
        let mut response = response.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let value: Value = response.body_mut().read_json().expect("WebDriver answers JSON");
        assert!(
            status.is_success(),
            "{method} {path}: {status}: {}",
            value["value"]["message"]
        );
        value["value"].clone()
    }

    fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({ "script": script, "args": [] }))
    }

    fn click(&self, element: &Value) {
        let id = element[ELEMENT].as_str().expect("an element reference");
        self.call("POST", &format!("/element/{id}/click"), json!({}));
    }

    fn element(&self, css: &str) -> Value {
        let found = self.call("POST", "/element", json!({ "using": "css selector", "value": css }));
        json!({ ELEMENT: found[ELEMENT] })
    }

    /// Runs mouse actions: moves are `(x, y)` offsets from the element's centre.
    fn mouse(&self, element: &Value, moves: &[(i64, i64)], pressed: bool) {
        let mut actions = Vec::new();
        for (i, &(x, y)) in moves.iter().enumerate() {
            actions.push(json!({ "type": "pointerMove", "duration": 30, "origin": element, "x": x, "y": y }));
            if pressed && i == 0 {
                actions.push(json!({ "type": "pointerDown", "button": 0 }));
            }
        }
        if pressed {
            actions.push(json!({ "type": "pointerUp", "button": 0 }));
        }
        let body = json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" }, "actions": actions
        }]});
        self.call("POST", "/actions", body);
    }

    /// Waits until `script` returns true, up to 20 s.
    fn wait_for(&self, what: &str, script: &str) {
        let start = Instant::now();
        while self.script(script) != json!(true) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn train(dir: &Path, args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_vae"))
        .args(["train", "--epochs", "1", "--hidden", "64", "--threads", "2"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// 2,000 of the built-in digits at 16x16, orange on blue, as an N x 16 x 16 x 3 uint8 array.
fn write_tinted_digits(path: &Path) {
    let (rgb, digits) = support::tinted_digits(2_000, 16, 0);
    let mut bytes = Vec::new();
    vae::data::npy::write_u8(&mut bytes, &[digits.len(), 16, 16, 3], &rgb).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A checksum of a canvas's pixels, to see whether what it shows changed.
fn canvas_sum(css: &str) -> String {
    format!(
        "const c = document.querySelector('{css}'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let s = 0; for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i]) % 1000000007; return s;"
    )
}

/// A chromedriver and a headless Chromium session on it (the driver stops when the first is
/// dropped).
fn start_browser() -> (support::Killed, Browser) {
    let port = free_port();
    let driver_process = support::Killed(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let driver = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while ureq::get(&format!("{driver}/status")).call().is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let capabilities = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:loggingPrefs": { "browser": "ALL" },
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1300,1500"]
        }
    }}});
    let session = ureq::post(&format!("{driver}/session"))
        .send_json(&capabilities)
        .unwrap()
        .body_mut()
        .read_json::<Value>()
        .unwrap();
    let id = session["value"]["sessionId"].as_str().expect("a session").to_string();
    let agent = ureq::Agent::new_with_config(ureq::Agent::config_builder().http_status_as_error(false).build());
    let browser = Browser {
        base: format!("{driver}/session/{id}"),
        agent,
    };

    (driver_process, browser)
}

/// Waits until every pane's interpolation strip holds its frames.
fn wait_for_strips(browser: &Browser) {
    browser.wait_for(
        "the interpolation strips",
        "return [...document.querySelectorAll('.interp-strip')].every(s => s.querySelectorAll('canvas').length >= 11);",
    );
}

/// Fails on any error the page caught (`window.explorerErrors`) or the console logged.
fn assert_no_page_errors(browser: &Browser) {
    let errors = browser.script("return window.explorerErrors;");
    assert_eq!(errors, json!([]), "the page reported errors");
    let log = browser.call("POST", "/se/log", json!({ "type": "browser" }));
    let severe: Vec<&Value> = log
        .as_array()
        .map(|entries| entries.iter().filter(|e| e["level"] == "SEVERE").collect())
        .unwrap_or_default();
    assert!(severe.is_empty(), "console errors: {severe:?}");
}

/// The page as a PNG, kept as `name` in the target's temporary folder.
fn screenshot(browser: &Browser, name: &str) -> Vec<u8> {
    let shot = browser.call("GET", "/screenshot", json!({}));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot.as_str().unwrap())
        .unwrap();
    assert_eq!(&png[1..4], b"PNG");
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());
    png
}

/// Whether the browser test can run here; says why not, or fails where CI requires it.
fn have_browser() -> bool {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("VAE_REQUIRE_BROWSER").is_none(),
            "{CHROMIUM} and {CHROMEDRIVER} are required (apt-get install chromium chromium-driver)"
        );
        eprintln!("skipped: {CHROMIUM} or {CHROMEDRIVER} is absent");
        return false;
    }
    true
}

#[test]
fn the_explorer_decodes_the_map_and_the_pad_in_chromium() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let runs: Vec<String> = match std::env::var("VAE_EXPLORER_RUNS") {
        Ok(runs) => runs.split_whitespace().map(String::from).collect(),
        Err(_) => {
            train(d, &["--kind", "ae", "--latent", "2", "--out", "ae-2"]);
            train(d, &["--kind", "vae", "--latent", "2", "--out", "vae-2"]);
            // A third run, with sliders and a fitted mixture to draw from.
            train(d, &["--kind", "vae", "--latent", "4", "--out", "vae-4"]);
            let fit = Command::new(env!("CARGO_BIN_EXE_vae"))
                .args(["fit-sampler", "vae-4", "--components", "5"])
                .current_dir(d)
                .output()
                .unwrap();
            assert!(fit.status.success(), "{}", String::from_utf8_lossy(&fit.stderr));
            // A colour run of another size, from an NPY array of tinted digits.
            write_tinted_digits(&d.join("tinted.npy"));
            train(d, &["--dataset", "tinted.npy", "--latent", "2", "--out", "tinted"]);
            vec!["ae-2".into(), "vae-2".into(), "vae-4".into(), "tinted".into()]
        }
    };

    let (_server, url) = support::serve(d, &runs);

    let (_driver, browser) = start_browser();

    browser.call("POST", "/url", json!({ "url": url }));
    browser.wait_for("the page", "return document.body.dataset.ready === '1';");

    // Moving over the AE's map decodes the points under the mouse.
    let decoded = canvas_sum("#pane-left .decoded");
    let before = browser.script(&decoded);
    let decodes = browser.script("return window.explorerDecodes;").as_i64().unwrap();
    let map = browser.element("#pane-left .latent-map");
    browser.mouse(&map, &[(-100, -90), (-60, -40), (-20, 10), (40, 60), (90, 100)], false);
    browser.wait_for("decodes", &format!("return window.explorerDecodes >= {};", decodes + 2));
    std::thread::sleep(Duration::from_millis(300));
    assert_ne!(browser.script(&decoded), before, "the decoded image did not change");

    // Drawing a stroke on the pad encodes it with both models and shows reconstructions.
    let pad = browser.element("#pad");
    browser.mouse(&pad, &[(-60, -80), (-20, -40), (0, 0), (10, 40), (20, 90)], true);
    browser.wait_for("encodes", "return window.explorerEncodes >= 2;");
    std::thread::sleep(Duration::from_millis(300));
    for pane in ["left", "right"] {
        let ink = browser.script(&format!(
            "const c = document.querySelector('#pane-{pane} .reconstruction'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let m = 0; for (let i = 0; i < d.length; i += 4) m = Math.max(m, d[i]); return m;"
        ));
        assert!(ink.as_i64().unwrap() > 0, "no reconstruction in the {pane} pane");
    }

    // The interpolation strip fills with frames.
    let go = browser.element("#interp-go");
    browser.click(&go);
    wait_for_strips(&browser);

    // A run with a fitted mixture: its button draws a code from it onto the sliders.
    if runs.iter().any(|r| r == "vae-4") {
        browser.script(
            "const s = document.querySelector('#pane-right .model-select'); s.value = 'vae-4'; s.dispatchEvent(new Event('change')); return 0;",
        );
        browser.wait_for(
            "the mixture button",
            "return !document.querySelector('#pane-right .mixture').hidden && document.querySelectorAll('#pane-right .sliders input').length === 4;",
        );
        let decodes = browser.script("return window.explorerDecodes;").as_i64().unwrap();
        let button = browser.element("#pane-right .mixture");
        browser.click(&button);
        browser.wait_for(
            "a code from the mixture",
            &format!(
                "return window.explorerDecodes > {decodes} && [...document.querySelectorAll('#pane-right .sliders input')].some(i => Number(i.value) !== 0);"
            ),
        );
        // The left pane (an autoencoder at latent 2, no mixture) shows no such button.
        let hidden = browser.script("return document.querySelector('#pane-left .mixture').hidden;");
        assert_eq!(hidden, json!(true));
    }

    // A colour run of 16x16 images: decoded in colour at its size; the pad is for grey ones.
    if runs.iter().any(|r| r == "tinted") {
        browser.script(
            "const s = document.querySelector('#pane-right .model-select'); s.value = 'tinted'; s.dispatchEvent(new Event('change')); return 0;",
        );
        browser.wait_for(
            "a colour decode",
            "const c = document.querySelector('#pane-right .decoded'); if (c.width !== 16 || c.height !== 16) return false; const d = c.getContext('2d').getImageData(0, 0, 16, 16).data; for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[i + 2]) > 40) return true; return false;",
        );
        let caption = browser.script("return document.querySelector('#pane-right .post-caption').textContent;");
        assert!(caption.as_str().unwrap().contains("grey"), "{caption}");
        browser.click(&go);
        browser.wait_for(
            "a colour interpolation",
            "const s = document.querySelector('#pane-right .interp-strip'); const c = s.querySelectorAll('canvas'); return c.length >= 11 && c[0].width === 16;",
        );
    }

    assert_no_page_errors(&browser);

    let png = screenshot(&browser, "explorer.png");
    if let Some(keep) = std::env::var_os("VAE_EXPLORER_SCREENSHOT") {
        std::fs::write(keep, &png).unwrap();
    }
    browser.call("DELETE", "", json!({}));
}

/// Runs `script` (which calls `done(value)` when finished) in the page and returns the value.
fn run_async(browser: &Browser, script: &str) -> Value {
    let script = format!("const done = arguments[arguments.length - 1]; {script}");
    browser.call("POST", "/execute/async", json!({ "script": script, "args": [] }))
}

#[test]
fn the_exported_page_explores_without_a_server() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    train(d, &["--kind", "ae", "--latent", "2", "--out", "ae-2"]);
    train(d, &["--kind", "cvae", "--latent", "2", "--out", "cvae-2"]);
    let o = support::vae(d, &["export", "ae-2", "cvae-2", "--html", "explorer.html"]);
    assert!(o.status.success(), "{}", support::stderr(&o));
    assert!(support::stderr(&o).contains(" MB"), "{}", support::stderr(&o));
    let page = d.join("explorer.html");
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "the page reaches out"
    );

    let (_driver, browser) = start_browser();
    browser.call("POST", "/url", json!({ "url": format!("file://{}", page.display()) }));
    browser.wait_for("the page", "return document.body.dataset.ready === '1';");

    // The page's decoder gives our pixels, to one level of 255.
    let codes = [[0.5f32, -1.0], [1.5, 0.3], [-2.0, 2.0], [0.0, 0.0]];
    for (run, label) in [("ae-2", None), ("cvae-2", Some(3u8))] {
        let request = match label {
            Some(l) => json!({ "model": run, "z": codes, "label": l }),
            None => json!({ "model": run, "z": codes }),
        };
        let got = run_async(
            &browser,
            &format!("window.OFFLINE('/api/decode', {request}).then(d => done(d.images), e => done(String(e)));"),
        );
        let model = vae::run::RunDir::new(d.join(run)).load_model().unwrap();
        let z = vae::engine::Matrix::from_vec(codes.len(), 2, codes.concat());
        let condition = model.condition(&vec![label.unwrap_or(0); codes.len()]).unwrap();
        let ours = model.decode(&z, condition.as_ref());
        let images = got.as_array().unwrap_or_else(|| panic!("{run}: {got}"));
        let mut worst = 0i64;
        for (r, image) in images.iter().enumerate() {
            let ours = vae::explore::api::to_pixels(ours.row(r));
            for (a, &b) in image.as_array().unwrap().iter().zip(&ours) {
                worst = worst.max((a.as_i64().unwrap() - b as i64).abs());
            }
        }
        assert!(worst <= 1, "{run}: pixels differ by {worst} levels");
    }
    let ms = run_async(
        &browser,
        "const t = performance.now(); const work = []; for (let i = 0; i < 100; i++) work.push(window.OFFLINE('/api/decode', { model: 'ae-2', z: [[i / 50 - 1, 0.5]] })); Promise.all(work).then(() => done((performance.now() - t) / 100));",
    );
    eprintln!("a decode in the page: {ms} ms");

    // The map decodes under the mouse, the pad encodes, the strip interpolates: as served.
    let decodes = browser.script("return window.explorerDecodes;").as_i64().unwrap();
    let map = browser.element("#pane-left .latent-map");
    browser.mouse(&map, &[(-100, -90), (-20, 10), (90, 100)], false);
    browser.wait_for("decodes", &format!("return window.explorerDecodes >= {};", decodes + 2));
    let pad = browser.element("#pad");
    browser.mouse(&pad, &[(-60, -80), (-20, -40), (0, 0), (10, 40), (20, 90)], true);
    browser.wait_for("encodes", "return window.explorerEncodes >= 2;");
    let go = browser.element("#interp-go");
    browser.click(&go);
    wait_for_strips(&browser);

    assert_no_page_errors(&browser);
    screenshot(&browser, "explorer-offline.png");
    browser.call("DELETE", "", json!({}));
}

/// The first pane's reconstruction canvas as 784 values in [0, 1].
const RECONSTRUCTION: &str = "const c = document.querySelector('#pane-left .reconstruction'); const d = c.getContext('2d').getImageData(0, 0, 28, 28).data; const v = []; for (let i = 0; i < d.length; i += 4) v.push(d[i] / 255); return v;";

fn values(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn a_large_off_centre_drawing_is_prepared_as_mnist_and_read_as_drawn() {
    if !have_browser() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = |args: &[&str]| {
        let o = support::vae(d, args);
        assert!(o.status.success(), "{}", support::stderr(&o));
    };
    run(&[
        "train",
        "--epochs",
        "10",
        "--latent",
        "16",
        "--out",
        "vae",
        "--threads",
        "2",
    ]);
    run(&["classifier", "train", "--epochs", "4", "--out", "clf"]);
    let classifier = vae::classifier::Classifier::load(&d.join("clf")).unwrap();
    let read = |image: &[f32]| {
        let p = classifier.probabilities(&vae::engine::Matrix::from_vec(1, 784, image.to_vec()));
        vae::classifier::argmax(&p.data)
    };

    // As served, and in the page exported without a server.
    let (_server, url) = support::serve(d, &["vae".into()]);
    run(&["export", "vae", "--html", "explorer.html"]);
    let exported = format!("file://{}", d.join("explorer.html").display());
    let (_driver, browser) = start_browser();
    for url in [url, exported] {
        browser.call("POST", "/url", json!({ "url": url }));
        browser.wait_for("the page", "return document.body.dataset.ready === '1';");
        draw_digits(&browser, &read, &url);
    }
    let errors = browser.script("return window.explorerErrors;");
    assert_eq!(errors, json!([]), "the page reported errors");
    browser.call("DELETE", "", json!({}));
}

/// Draws a one, a seven and a zero on the pad, large and off-centre, and checks that the
/// drawing prepared as MNIST's digits and the model's reconstruction of it are each read as
/// the digit drawn (`read` is the classifier).
fn draw_digits(browser: &Browser, read: &dyn Fn(&[f32]) -> usize, page: &str) {
    let pad = browser.element("#pad");
    let clear = browser.element("#pad-clear");
    // Offsets from the pad's centre, 10 screen pixels to a pad pixel: each digit about as tall
    // as the pad and far from its centre, where MNIST's digits are 20 pixels and centred.
    let ellipse: Vec<(i64, i64)> = (0..=32)
        .map(|k| {
            let t = k as f64 / 32.0 * std::f64::consts::TAU;
            ((45.0 + 60.0 * t.cos()) as i64, (15.0 + 110.0 * t.sin()) as i64)
        })
        .collect();
    let digits: [(usize, Vec<(i64, i64)>); 3] = [
        (1, vec![(-95, -125), (-92, -40), (-88, 40), (-85, 125)]),
        (7, vec![(-30, -120), (125, -120), (80, -40), (40, 40), (15, 125)]),
        (0, ellipse),
    ];
    for (digit, stroke) in digits {
        browser.click(&clear);
        let encodes = browser.script("return window.explorerEncodes;").as_i64().unwrap();
        browser.mouse(&pad, &stroke, true);
        browser.wait_for("the encode", &format!("return window.explorerEncodes > {encodes};"));
        std::thread::sleep(Duration::from_millis(300));
        let raw = values(&browser.script("return Array.from(pad);"));
        let prepared = values(&browser.script("return mnistStyle(Array.from(pad));"));
        let reconstruction = values(&browser.script(RECONSTRUCTION));
        // The prepared digit: its ink fits 20x20 and its centre of mass is the field's.
        let (mut mass, mut mx, mut my) = (0.0f32, 0.0f32, 0.0f32);
        for (i, &v) in prepared.iter().enumerate() {
            mass += v;
            mx += v * ((i % 28) as f32 + 0.5);
            my += v * ((i / 28) as f32 + 0.5);
        }
        assert!(
            (mx / mass - 14.0).abs() < 0.75 && (my / mass - 14.0).abs() < 0.75,
            "{digit}: centre of mass {}, {}",
            mx / mass,
            my / mass
        );
        eprintln!(
            "{page}: drew a {digit}: read as {} as drawn, {} prepared, {} reconstructed",
            read(&raw),
            read(&prepared),
            read(&reconstruction)
        );
        assert_eq!(read(&prepared), digit, "{page}: the prepared drawing of a {digit}");
        assert_eq!(
            read(&reconstruction),
            digit,
            "{page}: the reconstruction of a drawn {digit}"
        );
    }
    let errors = browser.script("return window.explorerErrors;");
    assert_eq!(errors, json!([]), "{page}: the page reported errors");
}
