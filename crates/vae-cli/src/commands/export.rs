//! `vae export RUN --pytorch DIR`: the model for PyTorch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vae::run::RunDir;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// Write model.py (a torch.nn.Module), model.safetensors (its weights in PyTorch's
    /// layouts) and train.py (continue training, on GPUs or under torchrun) into DIR.
    #[arg(long, value_name = "DIR")]
    pytorch: PathBuf,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let model = RunDir::new(&args.run).load_model()?;
    let files = vae::export::pytorch::export(&model, &args.pytorch)
        .with_context(|| format!("{}: cannot export to PyTorch", args.run.display()))?;
    for file in files {
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
