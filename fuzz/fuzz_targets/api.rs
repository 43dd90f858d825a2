//! The explorer's JSON API (`vae serve`) on arbitrary requests: every route's parsing and
//! method, any query string, any body. Each answer is a 200 or a 4xx with a JSON error,
//! never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae::data::{DataDirs, DatasetName, DatasetSpec, catalog};
use vae::explore::{ExploredModel, Explorer};
use vae::model::{Model, ModelConfig, ModelKind};

use serde::Serialize;
use vae::explore::api::{ApiError, parse_body, parse_query};

/// A route's answer as the server sends it: the status and the JSON body.
fn answer<T: Serialize>(result: Result<T, ApiError>) -> (u16, serde_json::Value) {
    match result {
        Ok(a) => (200, serde_json::to_value(a).unwrap()),
        Err(e) => (e.status(), e.body()),
    }
}

fn explorer() -> &'static Explorer {
    static EXPLORER: OnceLock<Explorer> = OnceLock::new();
    EXPLORER.get_or_init(|| {
        let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
        let test = data.test.take(40);
        let models = [("ae-2", ModelKind::Ae, 2), ("vae-3", ModelKind::Vae, 3), ("cvae-2", ModelKind::Cvae, 2)]
            .into_iter()
            .map(|(name, kind, latent)| {
                let config = ModelConfig {
                    kind,
                    hidden: vec![8],
                    latent,
                    classes: if kind == ModelKind::Cvae { 10 } else { 0 },
                    ..ModelConfig::mlp_vae()
                };
                let model = Model::new(config, &mut vae::rng::seeded(0)).unwrap();
                ExploredModel::new(name.into(), model, "mnist-sample".into(), 1, test.clone()).unwrap()
            })
            .collect();
        Explorer::new(models).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    // The bytes up to the first newline are the query string, the rest the body.
    let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let query = String::from_utf8_lossy(&rest[..cut]);
    let body = rest.get(cut + 1..).unwrap_or_default();
    let e = explorer();
    let (status, value) = match selector % 7 {
        0 => answer(Ok::<_, ApiError>(e.list())),
        1 => answer(parse_body(body).and_then(|r| e.decode(r))),
        2 => answer(parse_body(body).and_then(|r| e.encode(r))),
        3 => answer(parse_body(body).and_then(|r| e.interpolate(r))),
        4 => answer(parse_query(&query).and_then(|q| e.sample(q))),
        5 => answer(parse_query(&query).and_then(|q| e.latent_map(q))),
        _ => answer(parse_query(&query).and_then(|q| e.test_image(q))),
    };
    assert!(matches!(status, 200 | 400 | 404 | 422), "{status}: {value}");
    assert!(status == 200 || value["error"].is_string());
});
