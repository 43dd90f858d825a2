//! `vae fit-sampler RUN --kind gmm|two-stage`: fit a density to the training codes of a run
//! (a Gaussian mixture, or a second VAE) and save it in the run folder, so that `vae sample
//! --sampler KIND` draws where the codes are.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::run::RunDir;
use vae::sampler::{FittedGmm, GmmOptions, GroupFit, TwoStage, TwoStageOptions, default_components};

use super::SamplerArg;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// The kind of sampler: gmm, a Gaussian mixture with full covariances; two-stage, a
    /// second VAE trained on the codes (Dai & Wipf 2019).
    #[arg(long, value_enum, default_value = "gmm")]
    kind: SamplerArg,
    /// two-stage: the second VAE's training epochs (default: about 2.4 million codes seen,
    /// from 20 to 300 epochs).
    #[arg(long)]
    epochs: Option<usize>,
    /// two-stage: the second VAE's hidden widths (64-64 adds 2% to a draw's products).
    #[arg(long, value_delimiter = ',', default_values_t = TwoStageOptions::default().hidden)]
    hidden: Vec<usize>,
    /// Mixture components (for a CVAE: per class; default 50, shared out over a CVAE's
    /// classes).
    #[arg(long)]
    components: Option<usize>,
    /// Most EM iterations.
    #[arg(long, default_value_t = GmmOptions::default().max_iterations)]
    max_iterations: usize,
    /// EM stops when the mean log-likelihood per code gains less than this (nats).
    #[arg(long, default_value_t = GmmOptions::default().tolerance)]
    tolerance: f64,
    /// Seed of the held-out split and of the k-means++ start.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Dataset whose training codes to fit (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Print the fit's record as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<ExitCode> {
    anyhow::ensure!(
        !matches!(args.kind, SamplerArg::Prior),
        "--kind: the prior is the model's own and needs no fitting; fit a gmm or a two-stage"
    );
    let loaded = super::load_run(&args.run, args.dataset.as_deref())?;
    if matches!(args.kind, SamplerArg::TwoStage) {
        return fit_two_stage(&args, &loaded);
    }
    let options = GmmOptions {
        components: args
            .components
            .unwrap_or_else(|| default_components(loaded.model.conditioning())),
        max_iterations: args.max_iterations,
        tolerance: args.tolerance,
    };
    options.validate().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let data = loaded
        .data
        .prepared(loaded.config.train.binarize, loaded.config.train.seed);
    let run = RunDir::new(&args.run);
    let per_class = if loaded.model.conditioning().classes().is_some() {
        " per class"
    } else {
        ""
    };
    eprintln!(
        "fitting a {}-component Gaussian mixture{per_class} to the {} of {} training images of {}",
        options.components,
        loaded.model.encoder.head.code_name(),
        data.train.len(),
        data.name
    );
    let fitted = FittedGmm::fit(&loaded.model, &data.train, &data.name, &options, args.seed)?;
    fitted.save(&run, &loaded.model)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&fitted.report).expect("a report serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let prior = loaded.model.prior.name();
    for g in &fitted.report.groups {
        print_group(g, &prior);
    }
    println!(
        "  ({:.1} s; log-likelihoods are mean nats per code, higher is better)",
        fitted.report.seconds
    );
    println!("{}", args.run.join("sampler-gmm.safetensors").display());
    Ok(ExitCode::SUCCESS)
}

/// Trains the second stage on the run's training codes, one line per epoch.
fn fit_two_stage(args: &Args, loaded: &super::LoadedRun) -> Result<ExitCode> {
    let options = TwoStageOptions {
        hidden: args.hidden.clone(),
        epochs: args.epochs,
        latent: None,
        seed: args.seed,
    };
    let data = loaded
        .data
        .prepared(loaded.config.train.binarize, loaded.config.train.seed);
    eprintln!(
        "training a second VAE ({}, latent {}) on the {} of {} training images of {}",
        options
            .hidden
            .iter()
            .map(|h| h.to_string())
            .collect::<Vec<_>>()
            .join("-"),
        loaded.model.config.latent,
        loaded.model.encoder.head.code_name(),
        data.train.len(),
        data.name
    );
    let run = RunDir::new(&args.run);
    let fitted = TwoStage::fit(&run, &loaded.model, &data.train, &options, &mut |epoch, loss| {
        if epoch == 1 || epoch % 25 == 0 {
            eprintln!("  epoch {epoch}: held-out loss {loss:.3} nats per code");
        }
    })?;
    let r = &fitted.record;
    if args.json {
        println!("{}", serde_json::to_string(r).expect("a record serialises"));
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "  {} codes, {} held out: negative ELBO {:.3} nats per held-out code ({:.1} s)",
        r.train_codes, r.held_out_codes, r.held_out_neg_elbo, r.seconds
    );
    println!("{}", args.run.join("sampler-two-stage.json").display());
    Ok(ExitCode::SUCCESS)
}

/// One mixture's fit, its held-out codes scored under it and under the model's `prior`.
fn print_group(g: &GroupFit, prior_name: &str) {
    let f = &g.fit;
    let who = g.label.map_or(String::new(), |c| format!("class {c}: "));
    println!(
        "  {who}{} codes, {} EM iterations{}; log-likelihood {:.3}",
        f.codes,
        f.iterations,
        if f.converged { "" } else { " (not converged)" },
        f.log_likelihood
    );
    if let (Some(gmm), Some(prior)) = (g.held_out_log_likelihood, g.held_out_prior_log_likelihood) {
        println!(
            "  {who}{} held-out codes: log-likelihood {gmm:.3} under the mixture, {prior:.3} under the prior {prior_name}",
            g.held_out_codes
        );
    }
    if f.degenerate_components > 0 || f.empty_components > 0 {
        println!(
            "  {who}{} component(s) had a flat direction (covariance floor {:.2e} added to every diagonal), {} ended empty",
            f.degenerate_components, f.covariance_floor, f.empty_components
        );
    }
}
