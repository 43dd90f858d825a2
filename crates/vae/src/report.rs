//! The demo's report: one self-contained HTML page (pictures embedded as data URIs, charts as
//! inline SVG, no scripts, no network), AE and VAE side by side for each latent size (with
//! where their codes lie against the prior, and samples from a mixture fitted to the codes),
//! then the conv VAE beside the MLP VAE and the conditional VAE's digits by class, with the
//! table of numbers and a sentence explaining each.

use base64::Engine;

use crate::demo::{DemoModel, DemoResult, SecondStage};
use crate::html::escape as esc;
use crate::model::{Arch, DEFAULT_VAMP_COMPONENTS, ModelKind, PriorKind};
use crate::plot::{PALETTE, Series, line_chart_svg};

fn png(bytes: &[u8], alt: &str) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    format!(r#"<img src="data:image/png;base64,{data}" alt="{}">"#, esc(alt))
}

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; max-width: 1180px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 2em; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1.5em; align-items: start; }
.pair > div > h4, .triple > div > h4 { margin: 0.3em 0; }
.triple { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 1.5em; align-items: start; }
img, svg { max-width: 100%; height: auto; image-rendering: pixelated; }
.caption { color: #555; margin: 0.3em 0 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.95em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.6em; text-align: right; vertical-align: top; }
th:first-child, td:first-child, th:last-child { text-align: left; }
td.explain { text-align: left; color: #555; max-width: 28em; }
.better { font-weight: bold; background: #eef7ee; }
code { background: #f3f3f3; padding: 0 0.25em; }
"#;

/// Renders the report.
pub fn render_html(result: &DemoResult) -> String {
    let o = &result.options;
    let mut html = format!(
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>vae demo: autoencoder vs VAE on {dataset}</title><style>{STYLE}</style></head><body>
<h1>Autoencoder vs variational autoencoder</h1>
<p class="caption">{dataset}: {train} training and {test} test images. Autoencoder and VAE: MLP body {hidden:?}, {epochs} epochs of Adam at batch {batch}, Bernoulli likelihood, seed {seed}{extras}. Made by <code>vae demo</code> in {seconds:.0} s.</p>
<p>Both models squeeze an image into a small code and rebuild it from the code. The <b>autoencoder</b> learns only to rebuild, so its codes can sit anywhere. The <b>VAE</b> encodes each image as a small cloud, a normal law N(&mu;, &sigma;&sup2;), and pays a KL penalty for clouds that stray from the standard normal N(0, I). That regulariser makes the latent space <b>continuous</b> (close codes decode to close images) and <b>complete</b> (codes drawn from N(0, I) decode to real-looking images), which is what lets a VAE generate. The pictures and numbers below show the difference.</p>
"#,
        dataset = esc(&result.dataset),
        train = result.train_images,
        test = result.test_images,
        hidden = o.hidden,
        epochs = o.epochs,
        batch = o.batch_size,
        seed = o.seed,
        seconds = result.seconds,
        extras = if result
            .models
            .iter()
            .any(|m| m.arch == Arch::Conv || m.kind == ModelKind::Cvae)
        {
            r##"; a convolutional VAE and a conditional VAE follow in <a href="#beyond">Beyond the MLP</a>"##
        } else {
            ""
        },
    );
    html += &numbers_table(result);
    for &latent in &o.latents {
        let (Some(ae), Some(vae)) = (
            mlp_model(result, ModelKind::Ae, latent),
            mlp_model(result, ModelKind::Vae, latent),
        ) else {
            continue;
        };
        html += &format!(r#"<h2 id="latent-{latent}">Latent size {latent}</h2>"#);
        let section = |id: &str, title: &str, caption: &str, cell: &dyn Fn(&DemoModel) -> String| {
            format!(
                r#"<section id="{id}-{latent}"><h3>{title}</h3><p class="caption">{caption}</p><div class="pair"><div><h4>Autoencoder</h4>{}</div><div><h4>VAE</h4>{}</div></div></section>"#,
                cell(ae),
                cell(vae)
            )
        };
        html += &section(
            "reconstructions",
            "Reconstructions",
            "Test images (odd rows) above what each model rebuilds from their codes. Both models reconstruct: that alone says nothing about the latent space.",
            &|m| png(&m.reconstructions, "reconstructions"),
        );
        html += &section(
            "samples",
            "Samples from N(0, I)",
            "Codes drawn from the standard normal and decoded. The VAE was trained to make these codes meaningful; the autoencoder never was, so many of its samples are not digits.",
            &|m| png(&m.samples, "prior samples"),
        );
        html += &section(
            "code-density",
            "Where the codes are: the prior's holes",
            &format!(
                "The density of the training codes (blue) over the rings that hold 39%, 86% and 99% of N(0, I){}. White inside the rings is prior mass that no training image maps to: codes drawn there decode to blends. Of the draws from N(0, I), {:.1}% (AE) and {:.1}% (VAE) land farther from every training code than 99% of training codes are from their nearest neighbour (test images' codes: {:.1}% and {:.1}%).",
                if latent > 2 {
                    ", both projected on the codes' two principal components"
                } else {
                    ""
                },
                100.0 * ae.report.coverage.hole_share,
                100.0 * vae.report.coverage.hole_share,
                100.0 * ae.report.coverage.hole_share_of_test_codes,
                100.0 * vae.report.coverage.hole_share_of_test_codes,
            ),
            &|m| png(&m.code_density, "code density"),
        );
        html += &section(
            "fitted-samples",
            "Samples from a mixture fitted to the codes",
            &format!(
                "The same decoders, drawing their codes from a Gaussian mixture of {} components fitted to the training codes after training (<code>vae fit-sampler</code>) instead of from N(0, I). Confidently classified: {:.1}% (AE) and {:.1}% (VAE), against {:.1}% and {:.1}% from N(0, I); FID {:.1} and {:.1}, against {:.1} and {:.1}. A fitted density makes even the plain autoencoder samplable (Ghosh et al. 2020): the KL term's part is to make the codes regular, and the prior alone does not sample them well.",
                vae.fitted.components,
                100.0 * ae.fitted.quality.completeness.confident_share,
                100.0 * vae.fitted.quality.completeness.confident_share,
                100.0 * ae.report.completeness.confident_share,
                100.0 * vae.report.completeness.confident_share,
                ae.fitted.quality.fid,
                vae.fitted.quality.fid,
                ae.report.fid,
                vae.report.fid,
            ),
            &|m| png(&m.fitted.samples, "samples from the fitted mixture"),
        );
        html += &section(
            "interpolations",
            "Interpolations",
            "The same pairs of test images (at the ends of each row) and the straight path between their codes. A continuous space morphs smoothly; jumps and blurry non-digits mark holes.",
            &|m| png(&m.interpolations, "interpolations"),
        );
        html += &section(
            "latent-map",
            "Latent map",
            "Codes of the test images (the posterior means for the VAE), coloured by label. The VAE packs them around the origin where the prior puts its mass; the autoencoder spreads them over whatever range it likes.",
            &|m| png(&m.latent_map, "latent map"),
        );
        if ae.manifold.is_some() && vae.manifold.is_some() {
            html += &section(
                "manifold",
                "Manifold",
                "A 20 x 20 grid of codes decoded into one picture: for the VAE through the quantiles of N(0, 1), so each cell holds the same prior mass; for the autoencoder evenly over the range its test codes cover.",
                &|m| m.manifold.as_deref().map(|p| png(p, "manifold")).unwrap_or_default(),
            );
        }
        html += &section(
            "losses",
            "Loss per epoch",
            "Per image: summed over pixels (and latent dimensions), averaged over images. The VAE's test loss is the negative ELBO with z sampled as in training; it includes the KL term the autoencoder does not pay.",
            &|m| loss_chart(m),
        );
    }
    html += &learned_prior(result);
    html += &two_stage(result);
    html += &beyond_the_mlp(result);
    html += &format!(
        r#"<h2 id="reproduce">Reproduce</h2><p>The run folders are in <code>{}</code>: try <code>vae sample</code>, <code>vae interpolate --slerp</code>, <code>vae traverse</code> or <code>vae eval --latent</code> on them.</p></body></html>
"#,
        esc(&o.runs.display().to_string())
    );
    html
}

/// The AE or VAE of the side-by-side comparison at `latent`: the MLP ones.
/// The MLP model of `kind` and `latent` trained toward N(0, I).
fn mlp_model(result: &DemoResult, kind: ModelKind, latent: usize) -> Option<&DemoModel> {
    result
        .models
        .iter()
        .find(|m| m.kind == kind && m.arch == Arch::Mlp && m.latent == latent && m.prior == PriorKind::Standard)
}

/// The VAE trained with the VampPrior beside the standard VAE of its latent size: N(0, I)'s
/// samples, those of a mixture fitted after training, and those of the prior learned with the
/// model.
fn learned_prior(result: &DemoResult) -> String {
    let Some(vamp) = result.models.iter().find(|m| m.prior == PriorKind::Vamp) else {
        return String::new();
    };
    let Some(vae) = mlp_model(result, ModelKind::Vae, vamp.latent) else {
        return String::new();
    };
    let confident = |m: &DemoModel| 100.0 * m.report.completeness.confident_share;
    let test_loss = |m: &DemoModel| m.history.last().map_or(f64::NAN, |e| e.test_loss);
    let caption = format!(
        "The holes can also be closed while training, by a prior that moves its mass to where the codes are. The VampPrior (Tomczak &amp; Welling 2018) is a mixture of the encoder's own posteriors at {pseudo} learned pseudo-inputs, images that training shapes like the data; the KL term is then a Monte Carlo estimate at the drawn code. Confidently classified: {:.1}% from N(0, I), {:.1}% from the mixture fitted after training, {:.1}% from the learned prior; FID {:.1}, {:.1} and {:.1}; draws in holes {:.1}%, {:.1}% and {:.1}%. The learned prior also fits the data better: test loss {:.1} against {:.1} nats per image.",
        confident(vae),
        100.0 * vae.fitted.quality.completeness.confident_share,
        confident(vamp),
        vae.report.fid,
        vae.fitted.quality.fid,
        vamp.report.fid,
        100.0 * vae.report.coverage.hole_share,
        100.0 * vae.fitted.quality.coverage.hole_share,
        100.0 * vamp.report.coverage.hole_share,
        test_loss(vamp),
        test_loss(vae),
        pseudo = DEFAULT_VAMP_COMPONENTS,
    );
    format!(
        r#"<h2 id="learned-prior">A prior learned with the model, latent {latent}</h2><p class="caption">{caption}</p><div class="triple"><div><h4>VAE, codes from N(0, I)</h4>{}</div><div><h4>the same VAE, codes from a fitted mixture</h4>{}</div><div><h4>VAE trained with the VampPrior, codes from it</h4>{}</div></div>"#,
        png(&vae.samples, "VAE samples from N(0, I)"),
        png(&vae.fitted.samples, "VAE samples from the fitted mixture"),
        png(&vamp.samples, "samples from the VampPrior"),
        latent = vamp.latent,
    )
}

/// The AE and VAE of the largest latent size, each beside the second VAE trained on its
/// codes (the two-stage VAE), when the demo trained them.
fn two_stage(result: &DemoResult) -> String {
    let staged: Vec<(&DemoModel, &SecondStage)> = result
        .models
        .iter()
        .filter_map(|m| m.second_stage.as_ref().map(|s| (m, s)))
        .collect();
    let Some(&(first, stage)) = staged.first() else {
        return String::new();
    };
    let numbers: Vec<String> = staged
        .iter()
        .map(|(m, s)| {
            format!(
                "{}: confidently classified {:.1}% from N(0, I), {:.1}% from the second stage, {:.1}% from the mixture; FID {:.1}, {:.1} and {:.1}; draws in holes {:.1}%, {:.1}% and {:.1}%",
                short_name_of(m),
                100.0 * m.report.completeness.confident_share,
                100.0 * s.quality.completeness.confident_share,
                100.0 * m.fitted.quality.completeness.confident_share,
                m.report.fid,
                s.quality.fid,
                m.fitted.quality.fid,
                100.0 * m.report.coverage.hole_share,
                100.0 * s.quality.coverage.hole_share,
                100.0 * m.fitted.quality.coverage.hole_share,
            )
        })
        .collect();
    let caption = format!(
        "The other kind of fitted sampler: a second VAE trained on the first model's training codes (Dai &amp; Wipf 2019; <code>vae fit-sampler --kind two-stage</code>, {} epochs, {:.0} s for the {}), its own N(0, I) learning to map onto where the codes lie, with a Gaussian likelihood of learned variances. {}.",
        stage.epochs,
        stage.seconds,
        short_name_of(first),
        numbers.join(". ")
    );
    let rows: String = staged
        .iter()
        .map(|(m, s)| {
            let name = short_name_of(m);
            format!(
                r#"<div class="triple"><div><h4>{name}, codes from N(0, I)</h4>{}</div><div><h4>the same {name}, codes from the second stage</h4>{}</div><div><h4>the same {name}, codes from the fitted mixture</h4>{}</div></div>"#,
                png(&m.samples, "samples from N(0, I)"),
                png(&s.samples, "samples from the second stage"),
                png(&m.fitted.samples, "samples from the fitted mixture"),
            )
        })
        .collect();
    format!(
        r#"<h2 id="two-stage">A second VAE on the codes, latent {latent}</h2><p class="caption">{caption}</p>{rows}"#,
        latent = first.latent,
    )
}

/// "Autoencoder" or "VAE": the kind as a report heading names it.
fn short_name_of(m: &DemoModel) -> &'static str {
    match m.kind {
        ModelKind::Ae => "autoencoder",
        ModelKind::Vae => "VAE",
        ModelKind::Cvae => "CVAE",
    }
}

/// Two pictures side by side under a heading and a caption.
fn pair_section(id: &str, title: &str, caption: &str, left: (&str, String), right: (&str, String)) -> String {
    format!(
        r#"<section id="{id}"><h3>{title}</h3><p class="caption">{caption}</p><div class="pair"><div><h4>{}</h4>{}</div><div><h4>{}</h4>{}</div></div></section>"#,
        esc(left.0),
        left.1,
        esc(right.0),
        right.1
    )
}

/// The conv VAE against the MLP VAE of the same latent size, and the CVAE's digits by class.
fn beyond_the_mlp(result: &DemoResult) -> String {
    let conv = result.models.iter().find(|m| m.arch == Arch::Conv);
    let cvae = result.models.iter().find(|m| m.kind == ModelKind::Cvae);
    if conv.is_none() && cvae.is_none() {
        return String::new();
    }
    let mut html = String::from(r#"<h2 id="beyond">Beyond the MLP</h2>"#);
    if let Some(conv) = conv
        && let Some(vae) = mlp_model(result, ModelKind::Vae, conv.latent)
    {
        let latent = conv.latent;
        let (left, right) = (
            format!("MLP VAE ({} epochs)", vae.epochs),
            format!("conv VAE ({} epochs)", conv.epochs),
        );
        let (mlp_loss, conv_loss) = (
            vae.history.last().map_or(f64::NAN, |e| e.test_loss),
            conv.history.last().map_or(f64::NAN, |e| e.test_loss),
        );
        let verdict = if conv_loss < mlp_loss {
            format!(
                "In {} epochs against the MLP's {} it already ends lower.",
                conv.epochs, vae.epochs
            )
        } else {
            format!(
                "In {} epochs against the MLP's {} it has not caught up yet; trained as long, it ends lower (on Fashion-MNIST after 10 epochs each: 241.3 against 244.3 nats).",
                conv.epochs, vae.epochs
            )
        };
        let intro = format!(
            "The same VAE with a convolutional body: two 3x3 stride-2 convolutions (32 and 64 channels) before a 256-unit dense layer, mirrored by transposed convolutions in the decoder. Convolutions share their weights across positions, so a stroke is learnt once wherever it sits. Test loss: MLP {mlp_loss:.1}, conv {conv_loss:.1} nats per image; FID {:.1} and {:.1}. {verdict}",
            vae.report.fid, conv.report.fid
        );
        html += &format!(r#"<h3 id="conv">Convolutional VAE, latent {latent}</h3><p>{intro}</p>"#);
        html += &pair_section(
            "conv-reconstructions",
            "Reconstructions",
            "The same test images, rebuilt by each body.",
            (&left, png(&vae.reconstructions, "MLP reconstructions")),
            (&right, png(&conv.reconstructions, "conv reconstructions")),
        );
        html += &pair_section(
            "conv-samples",
            "Samples from N(0, I)",
            "The same prior draws decoded by each body.",
            (&left, png(&vae.samples, "MLP samples")),
            (&right, png(&conv.samples, "conv samples")),
        );
        html += &pair_section(
            "conv-losses",
            "Loss per epoch",
            "A conv epoch costs several MLP epochs of compute, so the demo gives it fewer.",
            (&left, loss_chart(vae)),
            (&right, loss_chart(conv)),
        );
    }
    if let Some(cvae) = cvae {
        html += &format!(
            r#"<h3 id="cvae">Conditional VAE, latent {}</h3><p>Encoder and decoder both also receive the label, one-hot. The decoder no longer has to store the class in the code: the code keeps what the label does not say, the style.</p>"#,
            cvae.latent
        );
        html += &pair_section(
            "cvae-samples",
            "Digits by class, and its latent map",
            "Left: each row asks for one class; each column decodes the same code from N(0, I), so a column keeps its slant and thickness across classes. Right: the test codes coloured by label: the classes overlap, since the label, not the code, carries the class.",
            ("a row per class", png(&cvae.samples, "samples by class")),
            ("latent map", png(&cvae.latent_map, "CVAE latent map")),
        );
        let agreement = |q: Option<f64>| q.map_or("n/a".to_string(), |v| format!("{:.1}%", 100.0 * v));
        html += &pair_section(
            "cvae-fitted",
            "Asking for a class: N(0, I) against a mixture per class",
            &format!(
                "Where the code still carries some of the class, a code from N(0, I) can contradict the label asked for, and the decoder follows the code. A mixture fitted to each class's codes ({} components each) draws codes that go with the label. Classified as the label asked for: {} from N(0, I), {} from the mixtures.",
                cvae.fitted.components,
                agreement(cvae.report.label_agreement),
                agreement(cvae.fitted.quality.label_agreement),
            ),
            ("N(0, I)", png(&cvae.samples, "samples by class from N(0, I)")),
            (
                "a mixture per class",
                png(&cvae.fitted.samples, "samples by class from the mixtures"),
            ),
        );
    }
    html
}

fn loss_chart(m: &DemoModel) -> String {
    let train: Vec<f64> = m.history.iter().map(|e| e.train_loss).collect();
    let test: Vec<f64> = m.history.iter().map(|e| e.test_loss).collect();
    line_chart_svg(
        &format!("{}: loss per image", m.name),
        "epoch",
        "loss (nats)",
        &[
            Series {
                name: "train",
                values: &train,
                colour: PALETTE[0],
            },
            Series {
                name: "test",
                values: &test,
                colour: PALETTE[1],
            },
        ],
    )
}

/// The numbers of every model in one table, the better of each AE/VAE pair in bold.
fn numbers_table(result: &DemoResult) -> String {
    let models = &result.models;
    let protocol = models.first().map(|m| &m.report.protocol);
    let mut html = String::from(r#"<h2 id="numbers">The numbers</h2>"#);
    if let Some(p) = protocol {
        html += &format!(
            r#"<p class="caption">Measured on the {} test images with a digit classifier trained on the training split ({:.1}% test accuracy): {} codes drawn from N(0, I) per model, {} interpolation paths of {} frames between random test pairs, seed {}.</p>"#,
            result.test_images,
            100.0 * result.classifier_accuracy,
            p.samples,
            p.interpolation_pairs,
            p.interpolation_frames,
            p.seed
        );
    }
    html += "<table><tr><th>measure</th>";
    for m in models {
        html += &format!("<th>{}</th>", esc(&m.name));
    }
    html += "<th>real test images</th><th>what it says</th></tr>";
    // (label, value of a model, reference, whether higher is better, explanation)
    type Getter = fn(&DemoModel) -> f64;
    let floor = models.first().map(|m| m.report.fid_floor).unwrap_or(0.0);
    let rows: Vec<(&str, Getter, String, Option<bool>, &str)> = vec![
        (
            "confidently classified samples",
            |m| 100.0 * m.report.completeness.confident_share,
            format!("{:.1}%", 100.0 * result.real.confident_share),
            Some(true),
            "Completeness: share of prior samples the classifier labels with probability &ge; 0.9. A complete space decodes every likely code to a digit.",
        ),
        (
            "label entropy of samples (bits)",
            |m| m.report.completeness.label_entropy_bits,
            format!("{:.2}", result.real.label_entropy_bits),
            Some(true),
            "Completeness: how evenly the samples cover the ten classes; 3.32 bits is all ten equally often.",
        ),
        (
            "FID (classifier features)",
            |m| m.report.fid,
            format!("{floor:.1} (train vs test)"),
            Some(false),
            "Sample quality: Fr&eacute;chet distance between classifier features of prior samples and of test images. Lower is better; the train-vs-test value is the floor.",
        ),
        (
            "confidently classified, fitted mixture",
            |m| 100.0 * m.fitted.quality.completeness.confident_share,
            format!("{:.1}%", 100.0 * result.real.confident_share),
            Some(true),
            "The same share for codes drawn from a Gaussian mixture fitted to the training codes after training, decoded by the same decoder.",
        ),
        (
            "FID, fitted mixture",
            |m| m.fitted.quality.fid,
            format!("{floor:.1} (train vs test)"),
            Some(false),
            "The same distance for the fitted mixture's samples.",
        ),
        (
            "prior draws in holes",
            |m| 100.0 * m.report.coverage.hole_share,
            format!(
                "{:.1}% (test codes)",
                models
                    .first()
                    .map_or(0.0, |m| 100.0 * m.report.coverage.hole_share_of_test_codes)
            ),
            Some(false),
            "Share of codes drawn from N(0, I) that land farther from every training code than 99% of training codes are from their nearest one: regions no image maps to.",
        ),
        (
            "mixture draws in holes",
            |m| 100.0 * m.fitted.quality.coverage.hole_share,
            "".into(),
            Some(false),
            "The same share for the fitted mixture's draws.",
        ),
        (
            "mean step / endpoint distance",
            |m| m.report.continuity.mean_step,
            format!(
                "{:.3} (an even path)",
                models.first().map(|m| m.report.continuity.even_step).unwrap_or(0.0)
            ),
            Some(false),
            "Continuity: along straight paths between test codes, the average pixel distance between consecutive frames relative to the distance between the end frames. An even morph scores 1/(frames - 1).",
        ),
        (
            "95th percentile step",
            |m| m.report.continuity.p95_step,
            "".into(),
            Some(false),
            "Continuity: the largest steps along those paths; big values are jumps, where the decoder switches abruptly.",
        ),
        (
            "paths whose label flips back",
            |m| 100.0 * m.report.continuity.back_and_forth_share,
            "".into(),
            Some(false),
            "Continuity: share of paths along which the predicted label leaves a class and comes back, a sign of holes the path crosses.",
        ),
        (
            "test loss (nats per image)",
            |m| m.history.last().map(|e| e.test_loss).unwrap_or(f64::NAN),
            "".into(),
            None,
            "Reconstruction loss, plus the KL term for the VAE (the negative ELBO). Not comparable across the two kinds: the AE pays no KL.",
        ),
        (
            "test reconstruction (nats)",
            |m| m.history.last().map(|e| e.test_recon).unwrap_or(f64::NAN),
            "".into(),
            None,
            "How well images are rebuilt. The autoencoder usually wins here: it spends nothing on regularity.",
        ),
    ];
    for (label, get, reference, higher_better, explain) in rows {
        html += &format!("<tr><td>{label}</td>");
        for m in models {
            let v = get(m);
            // Bold marks the better of each MLP AE/VAE pair; the extra models stand alone.
            let paired =
                |o: &DemoModel| o.arch == Arch::Mlp && o.kind != ModelKind::Cvae && o.prior == PriorKind::Standard;
            let partner = models
                .iter()
                .find(|o| paired(m) && paired(o) && o.latent == m.latent && o.kind != m.kind)
                .map(get);
            let better = match (higher_better, partner) {
                (Some(true), Some(p)) => v > p,
                (Some(false), Some(p)) => v < p,
                _ => false,
            };
            let text = if label.contains("classified") || label.contains("flips") || label.contains("holes") {
                format!("{v:.1}%")
            } else if v.abs() >= 10.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.3}")
            };
            html += &format!(r#"<td{}>{text}</td>"#, if better { r#" class="better""# } else { "" });
        }
        html += &format!(r#"<td>{reference}</td><td class="explain">{explain}</td></tr>"#);
    }
    html + "</table><p class=\"caption\">Read the two completeness numbers together: a decoder that turns most codes into the same few digits is confidently classified yet covers few classes (low entropy). Bold marks the better of the autoencoder and the VAE at each latent size.</p>"
}
