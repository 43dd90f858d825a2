//! `vae export RUN --onnx DIR | --pytorch DIR`, `vae export RUN [RUN...] --html FILE`: the
//! model for other frameworks, or the explorer as one page.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use vae::run::RunDir;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder (several with --html: the page shows them side by side).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Write encoder.onnx (image to mu and logvar, or an autoencoder's code) and decoder.onnx
    /// (code, and a CVAE's one-hot label, to pixels) into DIR.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["pytorch", "html"])]
    onnx: Option<PathBuf>,
    /// Write model.py (a torch.nn.Module), model.safetensors (its weights in PyTorch's
    /// layouts) and train.py (continue training, on GPUs or under torchrun) into DIR.
    #[arg(long, value_name = "DIR")]
    pytorch: Option<PathBuf>,
    /// Write the latent explorer as one self-contained page (no server, no network): the
    /// runs' decoders and encoders run in the browser.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    if args.runs.len() > 1 && (args.onnx.is_some() || args.pytorch.is_some()) {
        bail!("--onnx and --pytorch export one run at a time (--html takes several)");
    }
    let mut files = Vec::new();
    let first = &args.runs[0];
    if args.onnx.is_some() || args.pytorch.is_some() {
        let model = RunDir::new(first).load_model()?;
        if let Some(dir) = &args.onnx {
            let written = vae::export::onnx::export(&model, dir)
                .with_context(|| format!("{}: cannot export to ONNX", first.display()))?;
            files.extend(written);
        }
        if let Some(dir) = &args.pytorch {
            let written = vae::export::pytorch::export(&model, dir)
                .with_context(|| format!("{}: cannot export to PyTorch", first.display()))?;
            files.extend(written);
        }
    }
    if let Some(file) = &args.html {
        let models = args
            .runs
            .iter()
            .map(|run| super::serve::explored_model(run))
            .collect::<Result<Vec<_>>>()?;
        let page = vae::export::html::page(&models).context("cannot export the page")?;
        vae::files::write_output(file, page.as_bytes())?;
        eprintln!("{}: {:.1} MB", file.display(), page.len() as f64 / 1e6);
        files.push(file.clone());
    }
    for file in files {
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
