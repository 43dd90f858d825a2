//! `vae reconstruct RUN`: test images above their reconstructions.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::checkpoint::load_model;
use vae::image::encode_png;
use vae::pictures;
use vae::run::{RunDir, write_atomic};

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
    /// Picture to write (default: RUN/reconstruction.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    anyhow::ensure!(args.count > 0, "-n: must be at least 1");
    let run = RunDir::new(&args.run);
    let model = load_model(&run)?;
    let dataset = args.dataset.unwrap_or(run.read_config()?.train.dataset);
    let data = super::load_dataset(&dataset)?;
    model.check_labels(&data.test.labels, &format!("{} test labels", data.name))?;
    let inputs = data.test.range_batch(0, args.count);
    let labels = &data.test.labels[..inputs.rows];
    let out = super::output_path(&args.run, args.out, "reconstruction.png");
    write_atomic(&out, &encode_png(&pictures::reconstructions(&model, &inputs, labels)?)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}
