//! The API on small untrained models over real digits: every route answers, and every kind of
//! bad request gets its 4xx and a one-line JSON error.

use base64::Engine;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::Serialize;
use serde_json::{Value, json};

use super::*;
use crate::data::{DataDirs, DatasetName, DatasetSpec, catalog};
use crate::model::{ModelConfig, ModelKind};

fn explorer() -> Explorer {
    let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
    let test = data.test.take(300);
    let make = |name: &str, config: ModelConfig| {
        let model = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(7)).unwrap();
        ExploredModel::new(name.into(), model, "mnist-sample".into(), 3, test.clone()).unwrap()
    };
    let small = |model, latent| ModelConfig {
        kind: model,
        hidden: vec![32],
        latent,
        classes: if model == ModelKind::Cvae { 10 } else { 0 },
        ..ModelConfig::mlp_vae()
    };
    Explorer::new(vec![
        make("ae-2", small(ModelKind::Ae, 2)),
        make("vae-5", small(ModelKind::Vae, 5)),
        make("cvae-2", small(ModelKind::Cvae, 2)),
    ])
    .unwrap()
}

/// What the server answers a request with: the route's typed method on the parsed body or
/// query, as a status and JSON (the routing itself is the server's, tested over HTTP).
fn handle(e: &Explorer, method: &str, path: &str, query: &str, body: &[u8]) -> (u16, Value) {
    fn value<T: Serialize>(answer: Result<T, ApiError>) -> Result<Value, ApiError> {
        answer.map(|a| serde_json::to_value(a).unwrap())
    }
    let answer = match (method, path) {
        ("GET", "/api/models") => value(Ok(e.list())),
        ("POST", "/api/decode") => value(parse_body(body).and_then(|r| e.decode(r))),
        ("POST", "/api/encode") => value(parse_body(body).and_then(|r| e.encode(r))),
        ("POST", "/api/interpolate") => value(parse_body(body).and_then(|r| e.interpolate(r))),
        ("GET", "/api/sample") => value(parse_query(query).and_then(|q| e.sample(q))),
        ("GET", "/api/latent-map") => value(parse_query(query).and_then(|q| e.latent_map(q))),
        ("GET", "/api/test-image") => value(parse_query(query).and_then(|q| e.test_image(q))),
        _ => panic!("{method} {path}: not a route of the API"),
    };
    match answer {
        Ok(v) => (200, v),
        Err(error) => (error.status(), error.body()),
    }
}

fn post(e: &Explorer, path: &str, body: Value) -> (u16, Value) {
    handle(e, "POST", path, "", body.to_string().as_bytes())
}

fn refused(answer: (u16, Value), status: u16, needle: &str) {
    assert_eq!(answer.0, status, "{}", answer.1);
    let message = answer.1["error"].as_str().expect("an error message");
    assert!(message.contains(needle), "expected {needle:?} in {message:?}");
    assert!(!message.contains('\n'), "not one line: {message}");
}

#[test]
fn every_route_answers() {
    let e = explorer();
    let (status, models) = handle(&e, "GET", "/api/models", "", b"");
    assert_eq!(status, 200);
    assert_eq!(models["models"].as_array().unwrap().len(), 3);
    assert_eq!(models["models"][2]["kind"], "cvae");
    assert_eq!(models["models"][1]["class_names"][7], "7");

    let (status, decoded) = post(
        &e,
        "/api/decode",
        json!({"model": "vae-5", "z": [[0, 0, 0, 0, 0], [1, 2, 3, 4, 5]]}),
    );
    assert_eq!(status, 200, "{decoded}");
    let images = decoded["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    assert_eq!(images[0].as_array().unwrap().len(), 784);
    assert_ne!(images[0], images[1], "different codes, different images");
    let (status, png) = post(
        &e,
        "/api/decode",
        json!({"model": "ae-2", "z": [[0.5, -1]], "format": "png"}),
    );
    assert_eq!(status, 200, "{png}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(png["images"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(&bytes[1..4], b"PNG");

    let image: Vec<f32> = (0..784).map(|i| (i % 28) as f32 / 27.0).collect();
    let (status, encoded) = post(&e, "/api/encode", json!({"model": "vae-5", "image": image}));
    assert_eq!(status, 200, "{encoded}");
    assert_eq!(encoded["mu"].as_array().unwrap().len(), 5);
    assert!(encoded["sigma"][0].as_f64().unwrap() > 0.0);
    assert_eq!(encoded["reconstruction"].as_array().unwrap().len(), 784);
    let (_, ae) = post(&e, "/api/encode", json!({"model": "ae-2", "image": image}));
    assert!(ae["sigma"].is_null());
    // A 2-D code is its own map point.
    assert_eq!(ae["map_point"], ae["mu"]);

    let (status, path) = post(
        &e,
        "/api/interpolate",
        json!({"model": "cvae-2", "from": {"index": 0}, "to": {"image": image, "label": 3}, "steps": 4, "slerp": true}),
    );
    assert_eq!(status, 200, "{path}");
    assert_eq!(path["images"].as_array().unwrap().len(), 5);
    assert_eq!(path["codes"].as_array().unwrap().len(), 5);

    let (status, samples) = handle(&e, "GET", "/api/sample", "model=cvae-2&n=3&seed=4&label=7", b"");
    assert_eq!(status, 200, "{samples}");
    assert_eq!(samples["images"].as_array().unwrap().len(), 3);
    let again = handle(&e, "GET", "/api/sample", "model=cvae-2&n=3&seed=4&label=7", b"").1;
    assert_eq!(samples, again, "same seed, same samples");

    let (status, map) = handle(&e, "GET", "/api/latent-map", "model=vae-5&limit=100", b"");
    assert_eq!(status, 200, "{map}");
    assert_eq!(map["points"].as_array().unwrap().len(), 100);
    assert_eq!(map["projection"], "pca");
    let (lo, hi) = (
        map["bounds"]["x"][0].as_f64().unwrap(),
        map["bounds"]["x"][1].as_f64().unwrap(),
    );
    assert!(lo < hi);
    assert_eq!(
        handle(&e, "GET", "/api/latent-map", "model=ae-2", b"").1["projection"],
        "identity"
    );

    let (status, test) = handle(&e, "GET", "/api/test-image", "model=ae-2&index=5", b"");
    assert_eq!(status, 200);
    assert_eq!(test["label"], e.models()[0].test.labels[5]);
}

#[test]
fn bad_requests_get_a_4xx_and_a_json_error() {
    let e = explorer();
    refused(handle(&e, "POST", "/api/decode", "", b"{not json"), 400, "request body");
    refused(handle(&e, "POST", "/api/decode", "", b""), 400, "request body");
    refused(
        post(&e, "/api/decode", json!({"model": "vae-5", "z": "zero"})),
        400,
        "request body",
    );
    refused(
        post(&e, "/api/decode", json!({"model": "vae-5", "z": [[0]], "extra": 1})),
        400,
        "unknown field",
    );
    refused(
        post(&e, "/api/decode", json!({"model": "nope", "z": [[0, 0]]})),
        404,
        "model \"nope\"",
    );
    refused(
        post(
            &e,
            "/api/decode",
            json!({"model": "ae-2", "z": [[0, 0]], "format": "gif"}),
        ),
        400,
        "unknown variant",
    );
    refused(
        post(&e, "/api/decode", json!({"model": "vae-5", "z": [[0, 0]]})),
        422,
        "z[0]: expected 5 numbers, got 2",
    );
    refused(
        post(&e, "/api/decode", json!({"model": "vae-5", "z": []})),
        422,
        "z: 1 to 256",
    );
    // JSON has no NaN or infinity, and a number beyond f32 is refused on the way in.
    refused(
        post(&e, "/api/decode", json!({"model": "ae-2", "z": [[1e39, 0]]})),
        400,
        "number out of range",
    );
    refused(
        handle(&e, "POST", "/api/decode", "", br#"{"model": "ae-2", "z": [[NaN, 0]]}"#),
        400,
        "request body",
    );
    refused(
        post(&e, "/api/decode", json!({"model": "ae-2", "z": [[0, 0]], "label": 3})),
        422,
        "takes no label",
    );
    refused(
        post(&e, "/api/decode", json!({"model": "cvae-2", "z": [[0, 0]]})),
        422,
        "needs the class",
    );
    refused(
        post(
            &e,
            "/api/decode",
            json!({"model": "cvae-2", "z": [[0, 0]], "label": 10}),
        ),
        422,
        "10 is not a class",
    );
    let too_many: Vec<[f32; 2]> = vec![[0.0, 0.0]; 257];
    refused(
        post(&e, "/api/decode", json!({"model": "ae-2", "z": too_many})),
        422,
        "1 to 256 codes",
    );

    refused(
        post(&e, "/api/encode", json!({"model": "ae-2", "image": vec![0.5; 10]})),
        422,
        "expected 784 numbers",
    );
    let mut bright = vec![0.5f32; 784];
    bright[3] = 2.0;
    refused(
        post(&e, "/api/encode", json!({"model": "ae-2", "image": bright})),
        422,
        "image[3]: pixels must lie in [0, 1]",
    );

    refused(
        post(
            &e,
            "/api/interpolate",
            json!({"model": "ae-2", "from": {"index": 0}, "to": {"index": 300}}),
        ),
        404,
        "test image 300",
    );
    refused(
        post(
            &e,
            "/api/interpolate",
            json!({"model": "ae-2", "from": {"index": 0}, "to": {"index": 1}, "steps": 0}),
        ),
        422,
        "steps: 1 to 64",
    );
    refused(
        handle(&e, "GET", "/api/sample", "model=ae-2&n=0", b""),
        422,
        "n: 1 to 256",
    );
    refused(
        post(
            &e,
            "/api/interpolate",
            json!({"model": "cvae-2", "from": {"index": 0, "label": 7}, "to": {"index": 1}}),
        ),
        422,
        "from: give a test image's index, or an image",
    );
    refused(handle(&e, "GET", "/api/sample", "model=ae-2&n=many", b""), 400, "query");
    refused(
        handle(&e, "GET", "/api/sample", "n=3", b""),
        400,
        "missing field `model`",
    );
    refused(
        handle(&e, "GET", "/api/latent-map", "model=ae-2&limit=20000", b""),
        422,
        "limit: 1 to 10000",
    );
    refused(
        handle(&e, "GET", "/api/test-image", "model=ae-2&index=-1", b""),
        400,
        "query",
    );
}

#[test]
fn an_explorer_needs_distinct_runs() {
    assert!(Explorer::new(vec![]).is_err());
    let e = explorer();
    let twice = e.models.into_iter().take(1).flat_map(|m| {
        let copy = ExploredModel::new(m.name.clone(), m.model.clone(), m.dataset.clone(), 1, m.test.clone()).unwrap();
        [m, copy]
    });
    let error = Explorer::new(twice.collect()).err().unwrap().to_string();
    assert!(error.contains("two runs are named ae-2"), "{error}");
}

#[test]
fn decode_and_encode_answer_what_the_library_computes_for_a_conv_cvae() {
    let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
    let config = ModelConfig {
        kind: ModelKind::Cvae,
        channels: vec![4, 8],
        hidden: vec![16],
        latent: 3,
        classes: 10,
        ..ModelConfig::conv_vae()
    };
    let model = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(3)).unwrap();
    let explored = ExploredModel::new("conv-cvae".into(), model, "mnist-sample".into(), 1, data.test.take(50)).unwrap();
    let e = Explorer::new(vec![explored]).unwrap();
    let model = &e.models()[0].model;

    let z = [[0.5f32, -1.0, 2.0], [0.0, 0.0, 0.0]];
    let labels = [3u8, 8];
    let (status, decoded) = post(
        &e,
        "/api/decode",
        json!({"model": "conv-cvae", "z": z, "labels": labels}),
    );
    assert_eq!(status, 200, "{decoded}");
    let codes = Matrix::from_vec(2, 3, z.concat());
    let images = model.decode(&codes, model.condition(&labels).unwrap().as_ref());
    for r in 0..2 {
        assert_eq!(decoded["images"][r], json!(to_pixels(images.row(r))), "image {r}");
    }

    let x = data.test.range_batch(0, 1);
    let (status, encoded) = post(
        &e,
        "/api/encode",
        json!({"model": "conv-cvae", "image": x.data, "label": 7}),
    );
    assert_eq!(status, 200, "{encoded}");
    let mu = crate::latent::encode_codes(model, &x, &[7]).unwrap();
    let answered: Vec<f32> = serde_json::from_value(encoded["mu"].clone()).unwrap();
    assert_eq!(answered, mu.data);
    let condition = model.condition(&[7]).unwrap();
    let reconstruction = model.reconstruct(&x, condition.as_ref());
    assert_eq!(encoded["reconstruction"], json!(to_pixels(&reconstruction.data)));

    // Between two test images (their own labels, blended along the path), linearly.
    let (a, b) = (0, 5);
    let (label_a, label_b) = (data.test.labels[a], data.test.labels[b]);
    assert_ne!(label_a, label_b, "two classes, so the blend of labels shows");
    let (status, path) = post(
        &e,
        "/api/interpolate",
        json!({"model": "conv-cvae", "from": {"index": a}, "to": {"index": b}, "steps": 4}),
    );
    assert_eq!(status, 200, "{path}");
    let ends = data
        .test
        .range_batch(a, a + 1)
        .stacked(&data.test.range_batch(b, b + 1));
    let codes = crate::latent::encode_codes(model, &ends, &[label_a, label_b]).unwrap();
    let expected = interpolate(codes.row(0), codes.row(1), 5, false);
    let answered: Vec<Vec<f32>> = serde_json::from_value(path["codes"].clone()).unwrap();
    assert_eq!(answered.concat(), expected.data);
    let condition = crate::latent::blended_condition(model, label_a, label_b, 5).unwrap();
    let images = model.decode(&expected, condition.as_ref());
    for r in 0..5 {
        assert_eq!(path["images"][r], json!(to_pixels(images.row(r))), "frame {r}");
    }

    // From a drawing without a label to a test image, spherically: the test image's label
    // holds at both ends.
    let drawing: Vec<f32> = (0..784).map(|i| ((i % 28) as f32 / 27.0).min(1.0)).collect();
    let (status, path) = post(
        &e,
        "/api/interpolate",
        json!({"model": "conv-cvae", "from": {"image": drawing}, "to": {"index": b},
               "steps": 3, "slerp": true}),
    );
    assert_eq!(status, 200, "{path}");
    let ends = Matrix::from_vec(1, 784, drawing.clone()).stacked(&data.test.range_batch(b, b + 1));
    let condition = model.condition(&[label_b, label_b]).unwrap();
    let codes = codes_of(model, &ends, condition.as_ref());
    let expected = interpolate(codes.row(0), codes.row(1), 4, true);
    let answered: Vec<Vec<f32>> = serde_json::from_value(path["codes"].clone()).unwrap();
    assert_eq!(answered.concat(), expected.data);
    let images = model.decode(&expected, model.condition(&[label_b; 4]).unwrap().as_ref());
    for r in 0..4 {
        assert_eq!(path["images"][r], json!(to_pixels(images.row(r))), "frame {r}");
    }
    assert_eq!(path["from_image"], json!(to_pixels(&drawing)));
}

#[test]
fn a_fitted_mixture_is_served_beside_the_prior() {
    use crate::sampler::{FittedGmm, GmmOptions};
    let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
    let model = Model::new(
        ModelConfig {
            hidden: vec![32],
            latent: 5,
            ..ModelConfig::mlp_vae()
        },
        &mut Xoshiro256PlusPlus::seed_from_u64(7),
    )
    .unwrap();
    let options = GmmOptions {
        components: 3,
        ..GmmOptions::default()
    };
    let fitted = FittedGmm::fit(&model, &data.train.take(500), "mnist-sample", &options, 1).unwrap();
    let mut explored =
        ExploredModel::new("vae-5".into(), model, "mnist-sample".into(), 3, data.test.take(100)).unwrap();
    let e = Explorer::new(vec![explored]).unwrap();
    assert_eq!(
        handle(&e, "GET", "/api/models", "", b"").1["models"][0]["samplers"],
        json!(["prior"])
    );
    refused(
        handle(&e, "GET", "/api/sample", "model=vae-5&n=2&sampler=gmm", b""),
        422,
        "has no \"gmm\" sampler (it has prior; `vae fit-sampler` fits a gmm)",
    );

    explored = e.models.into_iter().next().unwrap();
    explored.add_sampler(Sampler::Gmm(fitted.clone()));
    let e = Explorer::new(vec![explored]).unwrap();
    assert_eq!(
        handle(&e, "GET", "/api/models", "", b"").1["models"][0]["samplers"],
        json!(["prior", "gmm"])
    );
    let (status, from_gmm) = handle(&e, "GET", "/api/sample", "model=vae-5&n=4&seed=2&sampler=gmm", b"");
    assert_eq!(status, 200, "{from_gmm}");
    // The mixture's own draws, with the same seed.
    let expected = fitted.mixtures[0].sample(4, 1.0, &mut Xoshiro256PlusPlus::seed_from_u64(2));
    for (r, code) in from_gmm["codes"].as_array().unwrap().iter().enumerate() {
        let code: Vec<f32> = serde_json::from_value(code.clone()).unwrap();
        assert_eq!(code, expected.row(r));
    }
    let from_prior = handle(&e, "GET", "/api/sample", "model=vae-5&n=4&seed=2", b"").1;
    assert_ne!(from_prior["codes"], from_gmm["codes"]);
    refused(
        handle(&e, "GET", "/api/sample", "model=vae-5&n=2&sampler=vamp", b""),
        422,
        "has no \"vamp\" sampler",
    );
}

#[test]
fn colour_runs_of_any_size_are_served_with_their_shape_and_class_names() {
    // A small RGB model over 12x20 colour images (the digits, tinted), its classes named.
    let data = catalog::load(&DatasetSpec::Named(DatasetName::MnistSample), &DataDirs::from_env()).unwrap();
    let grey = data.test.take(40);
    let (h, w) = (12, 20);
    let mut rgb = Vec::new();
    for i in 0..grey.len() {
        let image = grey.images.image(i).unwrap();
        for y in 0..h {
            for x in 0..w {
                let p = image[(y * 28 / h) * 28 + x * 28 / w];
                rgb.extend([p, p / 2, 255 - p]);
            }
        }
    }
    let test = Split {
        images: crate::data::Images {
            count: grey.len(),
            height: h,
            width: w,
            channels: 3,
            values: crate::data::Values::Bytes(rgb),
        },
        labels: grey.labels.clone(),
    };
    let config = ModelConfig {
        hidden: vec![16],
        latent: 2,
        image_height: h,
        image_width: w,
        image_channels: 3,
        ..ModelConfig::mlp_vae()
    };
    let model = Model::new(config, &mut Xoshiro256PlusPlus::seed_from_u64(7)).unwrap();
    let names: Vec<String> = (0..10).map(|c| format!("class {c}")).collect();
    let explored = ExploredModel::new("tinted".into(), model, "tinted".into(), 1, test)
        .unwrap()
        .with_class_names(names.clone());
    let e = Explorer::new(vec![explored]).unwrap();
    let (status, models) = handle(&e, "GET", "/api/models", "", b"");
    assert_eq!(status, 200);
    let info = &models["models"][0];
    assert_eq!(
        (
            info["height"].as_u64(),
            info["width"].as_u64(),
            info["channels"].as_u64()
        ),
        (Some(12), Some(20), Some(3))
    );
    assert_eq!(info["class_names"], json!(names));
    let (status, decoded) = handle(
        &e,
        "POST",
        "/api/decode",
        "",
        br#"{"model": "tinted", "z": [[0.5, -1.0]]}"#,
    );
    assert_eq!(status, 200, "{decoded}");
    assert_eq!(decoded["images"][0].as_array().unwrap().len(), 12 * 20 * 3);
    let image: Vec<f32> = (0..12 * 20 * 3).map(|i| (i % 7) as f32 / 7.0).collect();
    let body = serde_json::to_vec(&json!({"model": "tinted", "image": image})).unwrap();
    let (status, encoded) = handle(&e, "POST", "/api/encode", "", &body);
    assert_eq!(status, 200, "{encoded}");
    assert_eq!(encoded["reconstruction"].as_array().unwrap().len(), 12 * 20 * 3);
    let (status, refused) = handle(&e, "POST", "/api/encode", "", br#"{"model": "tinted", "image": [0.5]}"#);
    assert_eq!(status, 422);
    assert!(refused["error"].as_str().unwrap().contains("720"), "{refused}");
}
