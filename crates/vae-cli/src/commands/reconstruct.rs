//! `vae reconstruct RUN`: test images above their reconstructions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::image::encode_png;
use vae::pictures;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// How many test images.
    #[arg(short = 'n', long, default_value_t = 16)]
    count: usize,
    /// Dataset whose test split to use (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Picture to write (default: RUN/reconstructions-N.png; training's own
    /// reconstructions.png is left as it is).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    anyhow::ensure!(args.count > 0, "-n: must be at least 1");
    let super::LoadedRun { model, data, .. } = super::load_run(&args.run, args.dataset.as_deref())?;
    super::ensure_pictures(&args.run, &model)?;
    let inputs = data.test.range_batch(0, args.count);
    let labels = &data.test.labels[..inputs.rows];
    super::write_picture(
        &args.run,
        args.out,
        &format!("reconstructions-{}.png", args.count),
        &encode_png(&pictures::reconstructions(&model, &inputs, labels)?)?,
    )
}
