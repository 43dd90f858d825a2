//! `vae fit-sampler RUN --kind gmm`: fit a density to the training codes of a run and save it
//! in the run folder, so that `vae sample --sampler gmm` draws where the codes are.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::run::RunDir;
use vae::sampler::{FittedGmm, GmmOptions, GroupFit, default_components};

use super::SamplerArg;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// The kind of sampler: gmm, a Gaussian mixture with full covariances.
    #[arg(long, value_enum, default_value = "gmm")]
    kind: SamplerArg,
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
        matches!(args.kind, SamplerArg::Gmm),
        "--kind: the prior is the model's own and needs no fitting; fit a gmm"
    );
    let loaded = super::load_run(&args.run, args.dataset.as_deref())?;
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
