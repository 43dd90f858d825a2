//! The latent-space pictures: `vae interpolate`, `vae traverse`, `vae latent-map` and
//! `vae manifold`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, ensure};
use vae::image::{encode_png, encode_png_rgb};
use vae::latent::{encode_codes, random_pairs, split_codes};
use vae::pictures;
use vae::rng::seeded;

use super::{LoadedRun, load_run};

#[derive(clap::Args)]
pub struct InterpolateArgs {
    /// The run folder.
    run: PathBuf,
    /// Index of the first test image.
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// Index of the second test image.
    #[arg(long, default_value_t = 1)]
    to: usize,
    /// Steps between the two codes (steps + 1 decoded frames).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Walk along the great circle between the codes instead of the straight line.
    #[arg(long)]
    slerp: bool,
    /// Draw N random pairs of test images instead of --from and --to, one row each.
    #[arg(long)]
    pairs: Option<usize>,
    /// Seed of the random pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Dataset whose test split to use (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Picture to write (default: RUN/interpolation.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn interpolate_run(args: InterpolateArgs) -> Result<ExitCode> {
    ensure!(args.steps >= 1, "--steps: must be at least 1");
    let LoadedRun { model, data, .. } = load_run(&args.run, args.dataset.as_deref())?;
    super::ensure_pictures(&args.run, &model)?;
    let test = &data.test;
    let pairs: Vec<(usize, usize)> = match args.pairs {
        Some(n) => {
            ensure!(n >= 1, "--pairs: must be at least 1");
            random_pairs(n, test.len(), &mut seeded(args.seed))
        }
        None => {
            for (flag, i) in [("--from", args.from), ("--to", args.to)] {
                ensure!(
                    i < test.len(),
                    "{flag}: image {i} is out of range: the test split holds {}",
                    test.len()
                );
            }
            vec![(args.from, args.to)]
        }
    };
    let picture = pictures::interpolations(&model, test, &pairs, args.steps, args.slerp)?;
    super::write_picture(&args.run, args.out, "interpolation.png", &encode_png(&picture)?)
}

#[derive(clap::Args)]
pub struct TraverseArgs {
    /// The run folder.
    run: PathBuf,
    /// The latent dimension to vary (default: every dimension, one row each).
    #[arg(long)]
    dim: Option<usize>,
    /// Each dimension runs over its value ± this.
    #[arg(long, default_value_t = 3.0)]
    range: f32,
    /// Frames per row.
    #[arg(long, default_value_t = 9)]
    steps: usize,
    /// Start from the code of this test image (default: the origin, the prior's centre).
    #[arg(long)]
    image: Option<usize>,
    /// CVAE: decode as this class (default: the --image's class, else cycling along a row).
    #[arg(long)]
    label: Option<u8>,
    /// Dataset whose test split to use (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Picture to write (default: RUN/traversal.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn traverse_run(args: TraverseArgs) -> Result<ExitCode> {
    ensure!(args.steps >= 2, "--steps: must be at least 2");
    ensure!(
        args.range.is_finite() && args.range > 0.0,
        "--range: must be a finite number > 0"
    );
    let LoadedRun { model, data, .. } = load_run(&args.run, args.dataset.as_deref())?;
    super::ensure_pictures(&args.run, &model)?;
    super::ensure_label_fits(&args.run, &model, args.label)?;
    let latent = model.config.latent;
    let base = match args.image {
        Some(i) => {
            ensure!(
                i < data.test.len(),
                "--image: {i} is out of range: the test split holds {}",
                data.test.len()
            );
            encode_codes(&model, &data.test.range_batch(i, i + 1), &data.test.labels[i..=i])?.data
        }
        None => vec![0.0; latent],
    };
    let dims: Vec<usize> = match args.dim {
        Some(k) => {
            ensure!(
                k < latent,
                "--dim: {k} is out of range: the latent code has {latent} dimensions (0 to {})",
                latent - 1
            );
            vec![k]
        }
        None => (0..latent).collect(),
    };
    // From a test image, a CVAE keeps that image's class unless another is asked for.
    let label = args.label.or(args.image.map(|i| data.test.labels[i]));
    let picture = pictures::traversals(&model, &base, &dims, args.range, args.steps, label)?;
    super::write_picture(&args.run, args.out, "traversal.png", &encode_png(&picture)?)
}

#[derive(clap::Args)]
pub struct LatentMapArgs {
    /// The run folder.
    run: PathBuf,
    /// Dataset whose test split to map (default: the one the run trained on).
    #[arg(long)]
    dataset: Option<String>,
    /// Map only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    /// Draw instead the density of the training codes over the rings of the prior N(0, I):
    /// white inside the rings is where no training image maps, the prior's holes.
    #[arg(long)]
    density: bool,
    /// Picture to write (default: RUN/latent-map.png, RUN/code-density.png with --density).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn latent_map_run(args: LatentMapArgs) -> Result<ExitCode> {
    let LoadedRun { model, data, .. } = load_run(&args.run, args.dataset.as_deref())?;
    let test = match args.limit {
        Some(n) => data.test.take(n),
        None => data.test.clone(),
    };
    let run_name = args
        .run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if args.density {
        let title = format!(
            "Code density: {run_name} ({}, latent {})",
            model.config.kind.name(),
            model.config.latent
        );
        let picture = pictures::code_density(&model, &split_codes(&model, &data.train)?, title);
        return super::write_picture(&args.run, args.out, "code-density.png", &encode_png_rgb(&picture)?);
    }
    let title = format!(
        "Latent map: {run_name} ({}, latent {})",
        model.config.kind.name(),
        model.config.latent
    );
    let picture = pictures::latent_map(&model, &test, &data.class_names, title)?;
    super::write_picture(&args.run, args.out, "latent-map.png", &encode_png_rgb(&picture)?)
}

#[derive(clap::Args)]
pub struct ManifoldArgs {
    /// The run folder (latent size 2).
    run: PathBuf,
    /// Codes per side of the grid.
    #[arg(long, default_value_t = 20)]
    grid: usize,
    /// CVAE: decode the grid as this class (default 0).
    #[arg(long)]
    label: Option<u8>,
    /// Picture to write (default: RUN/manifold.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn manifold_run(args: ManifoldArgs) -> Result<ExitCode> {
    ensure!((2..=100).contains(&args.grid), "--grid: must be between 2 and 100");
    let LoadedRun { model, data, .. } = load_run(&args.run, None)?;
    super::ensure_pictures(&args.run, &model)?;
    super::ensure_label_fits(&args.run, &model, args.label)?;
    ensure!(
        model.config.latent == 2,
        "{}: the manifold needs a latent size of 2, this run has {}; train one with --latent 2",
        args.run.display(),
        model.config.latent
    );
    let picture = pictures::manifold(&model, &data.test, args.grid, args.label)?;
    super::write_picture(&args.run, args.out, "manifold.png", &encode_png(&picture)?)
}
