//! The explorer's JSON API (`vae serve`) on arbitrary requests: every route, any query string,
//! any body. Each answer is a 200 or a 4xx with a JSON error, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vae::data::{DataDirs, DatasetName, DatasetSpec, catalog};
use vae::explore::{ExploredModel, Explorer};
use vae::model::{Model, ModelConfig, ModelKind};

const ROUTES: [(&str, &str); 8] = [
    ("GET", "/api/models"),
    ("POST", "/api/decode"),
    ("POST", "/api/encode"),
    ("POST", "/api/interpolate"),
    ("GET", "/api/sample"),
    ("GET", "/api/latent-map"),
    ("GET", "/api/test-image"),
    ("GET", "/api/elsewhere"),
];

fn explorer() -> &'static Explorer {
    static EXPLORER: OnceLock<Explorer> = OnceLock::new();
    EXPLORER.get_or_init(|| {
        let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
        let test = data.test.take(40);
        let models = [("ae-2", ModelKind::Ae, 2), ("vae-3", ModelKind::Vae, 3), ("cvae-2", ModelKind::Cvae, 2)]
            .into_iter()
            .map(|(name, kind, latent)| {
                let config = ModelConfig {
                    model: kind,
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
    let (method, path) = ROUTES[selector as usize % ROUTES.len()];
    // The bytes up to the first newline are the query string, the rest the body.
    let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
    let query = String::from_utf8_lossy(&rest[..cut]);
    let body = rest.get(cut + 1..).unwrap_or_default();
    let (status, value) = explorer().handle(method, path, &query, body);
    assert!(matches!(status, 200 | 400 | 404 | 422), "{status}: {value}");
    assert!(status == 200 || value["error"].is_string());
});
