//! `vae export RUN --onnx DIR | --pytorch DIR`: the model for other frameworks.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vae::run::RunDir;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// Write encoder.onnx (image to mu and logvar, or an autoencoder's code) and decoder.onnx
    /// (code, and a CVAE's one-hot label, to pixels) into DIR.
    #[arg(long, value_name = "DIR", required_unless_present = "pytorch")]
    onnx: Option<PathBuf>,
    /// Write model.py (a torch.nn.Module), model.safetensors (its weights in PyTorch's
    /// layouts) and train.py (continue training, on GPUs or under torchrun) into DIR.
    #[arg(long, value_name = "DIR")]
    pytorch: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let model = RunDir::new(&args.run).load_model()?;
    let mut files = Vec::new();
    if let Some(dir) = &args.onnx {
        files.extend(
            vae::export::onnx::export(&model, dir)
                .with_context(|| format!("{}: cannot export to ONNX", args.run.display()))?,
        );
    }
    if let Some(dir) = &args.pytorch {
        files.extend(
            vae::export::pytorch::export(&model, dir)
                .with_context(|| format!("{}: cannot export to PyTorch", args.run.display()))?,
        );
    }
    for file in files {
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
