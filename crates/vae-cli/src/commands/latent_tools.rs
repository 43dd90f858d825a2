//! The latent-space pictures: `vae interpolate`, `vae traverse`, `vae latent-map` and
//! `vae manifold`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, ensure};
use vae::data::catalog::class_names;
use vae::engine::Matrix;
use vae::image::{GridLayout, encode_png, tile_grid};
use vae::latent::{encode_codes, interpolate, manifold_codes, project_2d, quantile_bounds, random_pairs, traverse};
use vae::model::ModelKind;
use vae::plot::{Scatter, encode_png_rgb, scatter_plot};
use vae::rng::seeded;
use vae::run::write_atomic;

use super::{LoadedRun, load_run, output_path};

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
    // Each row: the first input, the decoded path, the second input.
    let frames = args.steps + 1;
    let mut rows = Matrix::zeros(0, model.config.pixels());
    for (i, j) in pairs {
        let (xi, xj) = (test.range_batch(i, i + 1), test.range_batch(j, j + 1));
        let codes = encode_codes(&model, &xi.stacked(&xj));
        let path = interpolate(codes.row(0), codes.row(1), frames, args.slerp);
        rows = rows.stacked(&xi).stacked(&model.decode(&path)).stacked(&xj);
    }
    let picture = tile_grid(&rows, GridLayout::mnist(frames + 2));
    let out = output_path(&args.run, args.out, "interpolation.png");
    write_atomic(&out, &encode_png(&picture)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
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
    let latent = model.config.latent;
    let base = match args.image {
        Some(i) => {
            ensure!(
                i < data.test.len(),
                "--image: {i} is out of range: the test split holds {}",
                data.test.len()
            );
            encode_codes(&model, &data.test.range_batch(i, i + 1)).data
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
    let mut codes = Matrix::zeros(0, latent);
    for k in dims {
        codes = codes.stacked(&traverse(&base, k, args.range, args.steps));
    }
    let picture = tile_grid(&model.decode(&codes), GridLayout::mnist(args.steps));
    let out = output_path(&args.run, args.out, "traversal.png");
    write_atomic(&out, &encode_png(&picture)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
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
    /// Picture to write (default: RUN/latent-map.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn latent_map_run(args: LatentMapArgs) -> Result<ExitCode> {
    let LoadedRun {
        model, data, config, ..
    } = load_run(&args.run, args.dataset.as_deref())?;
    let test = match args.limit {
        Some(n) => data.test.take(n),
        None => data.test.clone(),
    };
    let codes = encode_codes(&model, &test.range_batch(0, test.len()));
    let projection = project_2d(&codes);
    let kind = model.config.model;
    let what = if kind == ModelKind::Vae {
        "posterior means"
    } else {
        "codes"
    };
    let (x_label, y_label, note) = match projection.pca_explained {
        None => (
            "z1".to_string(),
            "z2".to_string(),
            format!("{} {what} of the test images, coloured by label", test.len()),
        ),
        Some(share) => (
            "principal component 1".to_string(),
            "principal component 2".to_string(),
            format!(
                "PCA of {} {}-D {what}: the two components keep {:.0}% of the variance",
                test.len(),
                model.config.latent,
                100.0 * share
            ),
        ),
    };
    let run_name = args
        .run
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let picture = scatter_plot(&Scatter {
        points: &projection.points,
        labels: &test.labels,
        class_names: &class_names(&config.train.dataset),
        title: format!(
            "Latent map: {run_name} ({}, latent {})",
            kind.name(),
            model.config.latent
        ),
        x_label,
        y_label,
        note: Some(note),
    });
    let out = output_path(&args.run, args.out, "latent-map.png");
    write_atomic(&out, &encode_png_rgb(&picture)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args)]
pub struct ManifoldArgs {
    /// The run folder (latent size 2).
    run: PathBuf,
    /// Codes per side of the grid.
    #[arg(long, default_value_t = 20)]
    grid: usize,
    /// Picture to write (default: RUN/manifold.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn manifold_run(args: ManifoldArgs) -> Result<ExitCode> {
    ensure!((2..=100).contains(&args.grid), "--grid: must be between 2 and 100");
    let LoadedRun { model, data, .. } = load_run(&args.run, None)?;
    ensure!(
        model.config.latent == 2,
        "{}: the manifold needs a latent size of 2, this run has {}; train one with --latent 2",
        args.run.display(),
        model.config.latent
    );
    // The autoencoder has no prior: span where its test codes lie instead.
    let bounds = match model.config.model {
        ModelKind::Vae => [(0.0, 0.0); 2],
        ModelKind::Ae => quantile_bounds(&encode_codes(&model, &data.test.range_batch(0, data.test.len())), 0.01),
    };
    let codes = manifold_codes(model.config.model, args.grid, bounds);
    let picture = tile_grid(
        &model.decode(&codes),
        GridLayout {
            tile: (28, 28),
            columns: args.grid,
            scale: 1,
        },
    );
    let out = output_path(&args.run, args.out, "manifold.png");
    write_atomic(&out, &encode_png(&picture)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}
