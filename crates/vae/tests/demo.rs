//! The demo end to end on a slice of real digits, and its report as a browser would get it.

mod common;

use std::sync::atomic::AtomicBool;

use vae::classifier::{ClassifierTraining, train};
use vae::demo::{DemoOptions, run};
use vae::metrics::LatentOptions;
use vae::model::{Arch, ModelKind, PriorKind};
use vae::report::render_html;

#[test]
fn the_demo_trains_both_models_and_reports_every_section() {
    let data = common::small_sample(1_500, 200);
    let dir = tempfile::tempdir().unwrap();
    let options = DemoOptions {
        latents: vec![2],
        hidden: vec![64],
        epochs: 2,
        batch_size: 128,
        seed: 0,
        runs: dir.path().join("runs"),
        latent: LatentOptions {
            samples: 300,
            pairs: 10,
            frames: 11,
            seed: 0,
        },
        extras: true,
    };
    let classifier = train(
        &data,
        &ClassifierTraining {
            channels: vec![8],
            hidden: vec![32],
            epochs: Some(1),
            ..ClassifierTraining::default()
        },
        &mut |_| {},
    )
    .unwrap();
    let mut stages = Vec::new();
    let result = run(&data, &options, &classifier, &AtomicBool::new(false), &mut |e| {
        if let vae::demo::DemoEvent::Stage(s) = e {
            stages.push(s)
        }
    })
    .unwrap();
    let names: Vec<&str> = result.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ae-2", "vae-2", "conv-vae-2", "vamp-vae-2", "cvae-2"]);
    assert_eq!(result.models[0].kind, ModelKind::Ae);
    assert_eq!(result.models[1].kind, ModelKind::Vae);
    assert_eq!(result.models[2].arch, Arch::Conv);
    assert_eq!(result.models[3].prior, PriorKind::Vamp);
    assert_eq!(result.models[4].kind, ModelKind::Cvae);
    assert!(stages.iter().any(|s| s.contains("training vae-2")), "{stages:?}");
    assert!(
        stages
            .iter()
            .any(|s| s.contains("training conv-vae-2: convolutional variational")),
        "{stages:?}"
    );
    for m in &result.models {
        assert_eq!(m.history.len(), m.epochs);
        assert!(m.manifold.is_some(), "latent 2 has a manifold");
        assert_eq!(m.report.protocol.samples, 300);
        // A mixture fitted to the codes, saved where `vae sample --sampler gmm` finds it.
        assert_eq!(m.fitted.quality.completeness.images, 300);
        assert!(m.fitted.held_out_gain.is_finite());
        assert!(
            m.fitted.quality.sampler.contains("Gaussian mixture"),
            "{}",
            m.fitted.quality.sampler
        );
        assert!(
            dir.path()
                .join("runs")
                .join(&m.name)
                .join("sampler-gmm.safetensors")
                .is_file()
        );
        assert!(
            dir.path()
                .join("runs")
                .join(&m.name)
                .join("model.safetensors")
                .is_file()
        );
    }

    let html = render_html(&result);
    for id in [
        "numbers",
        "reconstructions-2",
        "samples-2",
        "code-density-2",
        "fitted-samples-2",
        "interpolations-2",
        "latent-map-2",
        "manifold-2",
        "losses-2",
        "beyond",
        "conv-reconstructions",
        "conv-samples",
        "conv-losses",
        "cvae-samples",
        "cvae-fitted",
        "learned-prior",
        "two-stage",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "section {id} missing");
    }
    // Self-contained: every picture inline, nothing fetched from anywhere.
    // AE and VAE: seven pictures each; conv beside MLP: two pairs; the CVAE: two pairs; the
    // learned prior: three samples side by side; the second stage: three more for each of the
    // AE and the VAE.
    assert_eq!(
        html.matches("data:image/png;base64,").count(),
        2 * 7 + 4 + 4 + 3 + 2 * 3
    );
    assert_eq!(html.matches("<svg").count(), 2 + 2);
    assert!(!html.contains("src=\"http") && !html.contains("<script") && !html.contains("<link"));
    assert!(html.contains("confidently classified samples") && html.contains("FID (classifier features)"));
    assert!(html.contains("confidently classified, fitted mixture") && html.contains("prior draws in holes"));
    // The CVAE's mixtures are per class: 50 components shared out over 10 classes.
    assert_eq!(result.models[4].fitted.components, 5);
    assert!(result.models[4].fitted.quality.label_agreement.is_some());
    // Only the AE and VAE of the largest latent size get a second stage.
    let staged: Vec<&str> = result
        .models
        .iter()
        .filter(|m| m.second_stage.is_some())
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(staged, ["ae-2", "vae-2"]);
}
