//! A corpus of broken run folders, generated here from a real one: every breakage gives a
//! one-line error that names the file, never a panic.

mod common;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use safetensors::{Dtype, tensor::TensorView};
use vae::model::ModelConfig;
use vae::run::{RunConfig, RunDir, TrainConfig};
use vae::train::Trainer;

/// A real, small, trained run folder.
fn trained_run() -> (tempfile::TempDir, RunDir) {
    let data = common::small_sample(300, 50);
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let config = RunConfig {
        model: ModelConfig {
            hidden: vec![16],
            latent: 3,
            ..ModelConfig::mlp_vae()
        },
        train: TrainConfig {
            dataset: "mnist-sample".into(),
            epochs: 1,
            batch_size: 100,
            seed: 0,
            threads: 1,
            ..TrainConfig::default()
        },
    };
    let mut trainer = Trainer::new(run.clone(), config).unwrap();
    trainer.train(&data, &AtomicBool::new(false), &mut |_| {}).unwrap();
    (dir, run)
}

/// The weights of `path` with `name`'s tensor replaced by `dtype`, `shape` and `bytes`.
fn rewrite_tensor(path: &std::path::Path, name: &str, dtype: Dtype, shape: Vec<usize>, bytes: Vec<u8>) {
    let original = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&original).unwrap();
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    for t in &mut owned {
        if t.0 == name {
            (t.1, t.2, t.3) = (dtype, shape.clone(), bytes.clone());
        }
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    std::fs::write(
        path,
        safetensors::serialize(views, None::<HashMap<String, String>>).unwrap(),
    )
    .unwrap();
}

fn assert_one_line_naming(error: vae::Error, file: &str, needle: &str) {
    let message = error.to_string();
    assert!(message.contains(file), "{message}");
    assert!(message.contains(needle), "expected '{needle}' in: {message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn weights_of_the_wrong_dtype_shape_or_value_are_refused() {
    let (_dir, run) = trained_run();
    let weights = run.model();
    let pristine = std::fs::read(&weights).unwrap();

    // f64 where f32 belongs: 16 x 784 values of 8 bytes.
    rewrite_tensor(
        &weights,
        "encoder.fc1.weight",
        Dtype::F64,
        vec![16, 784],
        vec![0; 16 * 784 * 8],
    );
    assert_one_line_naming(
        run.load_model().unwrap_err(),
        "model.safetensors",
        "encoder.fc1.weight is F64, expected F32",
    );

    std::fs::write(&weights, &pristine).unwrap();
    rewrite_tensor(&weights, "decoder.fc_out.bias", Dtype::F32, vec![783], vec![0; 783 * 4]);
    assert_one_line_naming(
        run.load_model().unwrap_err(),
        "model.safetensors",
        "has shape [783], the config implies [784]",
    );

    std::fs::write(&weights, &pristine).unwrap();
    let mut nan = vec![0u8; 3 * 4];
    nan[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    rewrite_tensor(&weights, "encoder.fc_mu.bias", Dtype::F32, vec![3], nan);
    assert_one_line_naming(
        run.load_model().unwrap_err(),
        "model.safetensors",
        "encoder.fc_mu.bias holds a non-finite value",
    );

    // Truncated in the middle of the data.
    std::fs::write(&weights, &pristine[..pristine.len() / 2]).unwrap();
    assert_one_line_naming(
        run.load_model().unwrap_err(),
        "model.safetensors",
        "not a valid safetensors file",
    );
    // A header that claims to be huge.
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend_from_slice(b"{}");
    std::fs::write(&weights, huge).unwrap();
    assert_one_line_naming(
        run.load_model().unwrap_err(),
        "model.safetensors",
        "not a valid safetensors file",
    );
}

#[test]
fn a_tensor_no_parameter_claims_is_refused() {
    let (_dir, run) = trained_run();
    let original = std::fs::read(run.model()).unwrap();
    let st = safetensors::SafeTensors::deserialize(&original).unwrap();
    let mut tensors = st.tensors();
    let one = 1f32.to_le_bytes();
    tensors.push((
        "encoder.fc9.weight".into(),
        TensorView::new(Dtype::F32, vec![1], &one).unwrap(),
    ));
    let bytes = safetensors::serialize(tensors, None::<HashMap<String, String>>).unwrap();
    std::fs::write(run.model(), bytes).unwrap();
    assert_one_line_naming(
        run.load_model().unwrap_err(),
        "model.safetensors",
        "unexpected tensor encoder.fc9.weight",
    );
}

/// Weights hold 4 bytes per parameter and a checkpoint three times that (Adam's two moments),
/// each with up to 64 MiB of header: one byte more is refused unread, the limit itself is read
/// (and found not to be safetensors: the files are sparse zeros).
#[test]
fn weights_and_checkpoints_are_refused_one_byte_past_what_the_model_can_fill() {
    let (_dir, run) = trained_run();
    let values: u64 = run
        .load_model()
        .unwrap()
        .param_shapes()
        .iter()
        .map(|&(r, c)| (r * c) as u64)
        .sum();
    assert_eq!(values, 784 * 16 + 16 + 2 * (16 * 3 + 3) + 3 * 16 + 16 + 16 * 784 + 784);
    let header = 64u64 << 20;
    let load = |which: &str| match which {
        "model" => run.load_model().map(|_| ()).unwrap_err(),
        _ => Trainer::resume(run.clone(), Some(2)).map(|_| ()).unwrap_err(),
    };
    for (which, path, copies) in [("model", run.model(), 1), ("checkpoint", run.checkpoint(), 3)] {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let limit = 4 * copies * values + header;
        std::fs::File::create(&path).unwrap().set_len(limit + 1).unwrap();
        let needle = format!("holds {} bytes, more than the {limit}", limit + 1);
        assert_one_line_naming(load(which), &name, &needle);
        std::fs::File::create(&path).unwrap().set_len(limit).unwrap();
        assert_one_line_naming(load(which), &name, "not a valid safetensors file");
    }
}

#[test]
fn directories_and_missing_files_where_files_belong_are_refused() {
    let (_dir, run) = trained_run();
    std::fs::remove_file(run.model()).unwrap();
    std::fs::create_dir(run.model()).unwrap();
    assert_one_line_naming(run.load_model().unwrap_err(), "model.safetensors", "is a directory");

    std::fs::remove_dir(run.model()).unwrap();
    assert_one_line_naming(run.load_model().unwrap_err(), "model.safetensors", "No such file");

    std::fs::remove_file(run.config()).unwrap();
    std::fs::create_dir(run.config()).unwrap();
    assert_one_line_naming(run.load_model().unwrap_err(), "config.json", "directory");

    std::fs::remove_dir(run.config()).unwrap();
    std::fs::write(run.config(), "").unwrap();
    assert_one_line_naming(run.load_model().unwrap_err(), "config.json", "invalid config");
}

#[test]
fn a_checkpoint_that_is_not_one_is_refused_on_resume() {
    let (_dir, run) = trained_run();
    std::fs::copy(run.model(), run.checkpoint()).unwrap();
    let error = Trainer::resume(run.clone(), Some(2)).err().unwrap();
    assert_one_line_naming(
        error,
        "checkpoint.safetensors",
        "optimizer.m.encoder.fc1.weight is missing",
    );
    std::fs::write(run.checkpoint(), b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":1}").unwrap();
    let error = Trainer::resume(run.clone(), Some(2)).err().unwrap();
    assert_one_line_naming(error, "checkpoint.safetensors", "not a valid safetensors file");
}

/// The checkpoint of `run` with its training state (the metadata's JSON) edited by `edit`.
fn forge_state(run: &RunDir, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(run.checkpoint()).unwrap();
    let (_, metadata) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut state: serde_json::Value =
        serde_json::from_str(&metadata.metadata().as_ref().unwrap()["train_state"]).unwrap();
    edit(&mut state);
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let tensors: Vec<(String, TensorView)> = st.tensors();
    let meta = HashMap::from([("train_state".to_string(), state.to_string())]);
    std::fs::write(run.checkpoint(), safetensors::serialize(tensors, Some(meta)).unwrap()).unwrap();
}

/// Resumes and trains `run` on `data` in a thread: a hang (a resume that spins) fails the test
/// after `limit` instead of holding it forever.
fn resume_within(run: &RunDir, data: vae::data::Dataset, limit: std::time::Duration) -> Result<(), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let run = run.clone();
    std::thread::spawn(move || {
        let result =
            Trainer::resume(run, Some(2)).and_then(|mut t| t.train(&data, &AtomicBool::new(false), &mut |_| {}));
        let _ = tx.send(result.map(|_| ()).map_err(|e| e.to_string()));
    });
    rx.recv_timeout(limit).expect("resume still running: it hangs")
}

#[test]
fn forged_training_states_are_refused_on_resume() {
    let data = common::small_sample(300, 50);
    let limit = std::time::Duration::from_secs(30);
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit); 11] = [
        // xoshiro's all-zero state draws zeros forever: the normal sampler would never return.
        ("the noise generator's state is all zeros", |s| {
            s["noise_rng"]["s"] = serde_json::json!([0, 0, 0, 0])
        }),
        ("train_loss -1e289 is out of range", |s| {
            s["history"][0]["train_loss"] = (-1e289).into()
        }),
        ("seconds -5 are out of range", |s| {
            s["history"][0]["seconds"] = (-5.0).into()
        }),
        ("images_per_sec 1e27 is out of range", |s| {
            s["history"][0]["images_per_sec"] = 1e27.into()
        }),
        ("a test loss is negative", |s| {
            s["history"][0]["test_kl"] = (-3.0).into()
        }),
        ("17 optimizer steps where 1 epochs and 0 batches make 3", |s| {
            s["adam_step"] = 17.into()
        }),
        // At an epoch's end the partial sums are empty: no images can sum to a loss.
        ("the epoch's loss sum 1 is out of range", |s| {
            s["partial"]["loss_sum"] = 1.0.into()
        }),
        ("the epoch's seconds -1 are out of range", |s| {
            s["partial"]["seconds"] = (-1.0).into()
        }),
        // The negative ELBO is a sum of non-negative terms (the IW bound need not be).
        ("train_loss -5 is out of range", |s| {
            s["history"][0]["train_loss"] = (-5.0).into()
        }),
        ("beta or free_bits is negative", |s| {
            s["history"][0]["beta"] = (-1.0).into()
        }),
        ("beta or free_bits is negative", |s| {
            s["history"][0]["free_bits"] = (-1.0).into()
        }),
    ];
    for (needle, edit) in cases {
        let (_dir, run) = trained_run();
        forge_state(&run, edit);
        let error = resume_within(&run, data.clone(), limit).expect_err(needle);
        assert!(error.contains("checkpoint.safetensors"), "{error}");
        assert!(error.contains(needle), "expected '{needle}' in: {error}");
    }
    // The unforged checkpoint resumes (the edits above are what was refused).
    let (_dir, run) = trained_run();
    forge_state(&run, |_| {});
    resume_within(&run, data, limit).unwrap();
}

#[test]
fn a_new_run_goes_only_into_an_absent_or_empty_folder() {
    let dir = tempfile::tempdir().unwrap();
    let absent = RunDir::new(dir.path().join("absent"));
    absent.ensure_fresh().unwrap();

    let empty = RunDir::new(dir.path().join("empty"));
    std::fs::create_dir(&empty.root).unwrap();
    empty.ensure_fresh().unwrap();
    // A lock left by a run killed at its very start is not the user's file.
    std::fs::write(empty.root.join(".lock"), "").unwrap();
    empty.ensure_fresh().unwrap();

    std::fs::write(empty.root.join("notes.txt"), "mine").unwrap();
    std::fs::write(empty.root.join("photo.png"), "mine").unwrap();
    assert_one_line_naming(empty.ensure_fresh().unwrap_err(), "empty", "is not empty (2 entries)");

    // A file where the folder should be cannot be listed: refused, not taken for absent.
    let file = RunDir::new(dir.path().join("a-file"));
    std::fs::write(&file.root, "").unwrap();
    assert_one_line_naming(file.ensure_fresh().unwrap_err(), "a-file", "Not a directory");

    let (_trained_dir, trained) = trained_run();
    assert_one_line_naming(trained.ensure_fresh().unwrap_err(), "", "already holds a run");
}

#[test]
fn a_missing_run_folder_is_named_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = RunDir::new(dir.path().join("typo"));
    assert_one_line_naming(missing.lock().unwrap_err(), "typo", "no such directory");
    assert_one_line_naming(missing.read_config().unwrap_err(), "typo", "no such directory");
    assert!(
        !missing.root.exists(),
        "nothing is created for a folder that is not a run"
    );
}

#[test]
fn a_real_runs_metrics_fit_the_limit_they_are_read_under() {
    let (_dir, run) = trained_run();
    let text = vae::files::read_text_limited(&run.metrics(), vae::files::MAX_METRICS_BYTES).unwrap();
    assert!(text.lines().count() >= 1);
    // Room for a long run: a metrics line is a few hundred bytes, so 100,000 epochs fit.
    let line = text.lines().next().unwrap().len() as u64;
    assert!(vae::files::MAX_METRICS_BYTES >= 100_000 * line, "{line}-byte lines");
}

#[test]
fn a_run_folder_from_before_the_kind_was_named_kind_resumes() {
    // Folders written before `model.kind` had its name said `model.model`, in config.json and
    // in the checkpoint's saved configuration alike.
    let (_dir, run) = trained_run();
    let rename = |model: &mut serde_json::Value| {
        let kind = model.as_object_mut().unwrap().remove("kind").unwrap();
        model["model"] = kind;
    };
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(run.config()).unwrap()).unwrap();
    rename(&mut config["model"]);
    std::fs::write(run.config(), config.to_string()).unwrap();
    forge_state(&run, |state| rename(&mut state["config"]["model"]));

    assert_eq!(run.read_config().unwrap().model.kind, vae::model::ModelKind::Vae);
    resume_within(&run, common::small_sample(300, 50), std::time::Duration::from_secs(60)).unwrap();
    let metrics = std::fs::read_to_string(run.metrics()).unwrap();
    assert_eq!(metrics.lines().count(), 2, "the old run trained its second epoch");
}
