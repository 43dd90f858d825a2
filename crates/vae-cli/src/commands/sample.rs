//! `vae sample RUN`: decode draws from the prior N(0, I) into a grid.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::checkpoint::load_model;
use vae::image::encode_png;
use vae::pictures;
use vae::rng::seeded;
use vae::run::{RunDir, write_atomic};

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// How many samples.
    #[arg(short = 'n', long, default_value_t = 64)]
    count: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Scale of the prior's standard deviation: below 1 draws nearer the centre.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Picture to write (default: RUN/sample.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    anyhow::ensure!(args.count > 0, "-n: must be at least 1");
    anyhow::ensure!(
        args.temperature.is_finite() && args.temperature >= 0.0,
        "--temperature: must be a finite number >= 0"
    );
    let model = load_model(&RunDir::new(&args.run))?;
    let mut rng = seeded(args.seed);
    let picture = pictures::prior_samples(&model, args.count, args.temperature, &mut rng);
    let out = super::output_path(&args.run, args.out, "sample.png");
    write_atomic(&out, &encode_png(&picture)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}
