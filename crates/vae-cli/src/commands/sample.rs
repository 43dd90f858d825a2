//! `vae sample RUN`: decode draws from the prior N(0, I), or from a sampler fitted to the
//! run's codes, into a grid.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::image::encode_png;
use vae::pictures;
use vae::rng::seeded;
use vae::run::RunDir;
use vae::sampler::Sampler;

use super::SamplerArg;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// How many samples (default 64; with --grid-labels: per class, default 10).
    #[arg(short = 'n', long)]
    count: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where codes come from: the prior N(0, I), or the Gaussian mixture that
    /// `vae fit-sampler RUN` fitted to the training codes.
    #[arg(long, value_enum, default_value = "prior")]
    sampler: SamplerArg,
    /// Scale of the prior's (or each mixture component's) standard deviation: below 1 draws
    /// nearer the centre.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// CVAE: draw this class only (default: cycle through the classes).
    #[arg(long)]
    label: Option<u8>,
    /// CVAE: one row per class, N draws a row, the same latent draws in every row.
    #[arg(long, conflicts_with = "label")]
    grid_labels: bool,
    /// Picture to write (default: RUN/samples-seedS.png, RUN/samples-gmm-seedS.png from the
    /// mixture; training's own samples.png is left as it is).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    anyhow::ensure!(args.count != Some(0), "-n: must be at least 1");
    anyhow::ensure!(
        args.temperature.is_finite() && args.temperature >= 0.0,
        "--temperature: must be a finite number >= 0"
    );
    let run = RunDir::new(&args.run);
    let model = run.load_model()?;
    super::ensure_pictures(&args.run, &model)?;
    let sampler = Sampler::load(&run, args.sampler.into(), &model)?;
    anyhow::ensure!(
        model.conditioning().classes().is_some() || (args.label.is_none() && !args.grid_labels),
        "{}: --label and --grid-labels need a cvae, this run is a {}",
        args.run.display(),
        model.config.kind.name()
    );
    let mut rng = seeded(args.seed);
    let picture = if args.grid_labels {
        // A row per class: -n is the row's length.
        pictures::samples_per_class(&model, &sampler, args.count.unwrap_or(10), args.temperature, &mut rng)?
    } else {
        pictures::samples(
            &model,
            &sampler,
            args.count.unwrap_or(64),
            args.temperature,
            args.label,
            &mut rng,
        )?
    };
    let name = match sampler.kind() {
        vae::sampler::SamplerKind::Prior => format!("samples-seed{}.png", args.seed),
        kind => format!("samples-{}-seed{}.png", kind.name(), args.seed),
    };
    super::write_picture(&args.run, args.out, &name, &encode_png(&picture)?)
}
