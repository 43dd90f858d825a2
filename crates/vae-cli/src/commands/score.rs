//! `vae score RUN INPUT...`: how well the model explains each item, its anomaly scores (see
//! [`vae::score`]); with `--against OTHER`, the AUROC of telling OTHER's items from
//! INPUT's by each score.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::data::items::NamedItems;
use vae::model::Model;
use vae::output::Table;
use vae::rng::seeded;
use vae::run::{RunConfig, RunDir};
use vae::score::{self, ItemScore, MEASURES, Typical, auroc};

use super::InputArgs;

/// Training items whose mean score is the typical one: enough for its mean to be sure to
/// a small fraction of a nat.
const TYPICAL_ITEMS: usize = 10_000;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// What to score: datasets as --dataset takes them, or image files.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Also the importance-weighted -log p(x) with K draws of q(z|x) per item (VAE only).
    #[arg(long, value_name = "K")]
    iw_samples: Option<usize>,
    /// Items that should look unusual: print how well each score tells them from INPUT's
    /// (AUROC), instead of the scores.
    #[arg(long, value_name = "OTHER", num_args = 1..)]
    against: Vec<String>,
    /// Where the scores go (CSV: item, label, then each score that applies: neg_elbo,
    /// reconstruction, kl, neg_log_px, typicality, complexity, corrected,
    /// corrected_typicality, per_complexity); default: standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also draw the histogram of the negative ELBO of INPUT's items (and OTHER's) into
    /// this PNG.
    #[arg(long, value_name = "FILE.png")]
    histogram: Option<PathBuf>,
    /// Seed of the sampled latent codes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    input: InputArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let model = run.load_model()?;
    let config = run.read_config()?;
    anyhow::ensure!(
        args.iw_samples.is_none_or(|k| k >= 1),
        "--iw-samples: must be at least 1"
    );
    anyhow::ensure!(
        args.iw_samples.is_none() || model.encoder.head.has_posterior(),
        "{}: --iw-samples needs a vae or cvae, this run is an {}",
        args.run.display(),
        model.config.kind.name()
    );
    let typical = typical_score(&model, &config, args.seed)?;
    let items = super::load_items(&args.inputs, &config, &args.input)?;
    let scores = scored(&model, &items, args.iw_samples, args.seed)?;
    if args.out.is_some() || args.against.is_empty() {
        let table = score_table(&items, &scores, &typical);
        super::write_or_print(args.out.as_deref(), &table.to_csv())?;
        if let Some(out) = &args.out {
            eprintln!("{}: scores of {} items", out.display(), table.rows());
        }
    }
    let other = match args.against.is_empty() {
        true => None,
        false => Some(super::load_items(&args.against, &config, &args.input)?),
    };
    let other_scores = match &other {
        Some(other) => scored(&model, other, args.iw_samples, args.seed)?,
        None => Vec::new(),
    };
    if let Some(path) = &args.histogram {
        let elbo = |s: &[ItemScore]| s.iter().map(|s| s.neg_elbo).collect::<Vec<f64>>();
        let (ours, theirs) = (elbo(&scores), elbo(&other_scores));
        let (input, against) = (args.inputs.join(" "), args.against.join(" "));
        let mut sets = vec![(input.as_str(), ours.as_slice())];
        if other.is_some() {
            sets.push((against.as_str(), theirs.as_slice()));
        }
        let picture = vae::plot::histogram_plot(&vae::plot::Histogram {
            sets: &sets,
            title: format!("negative ELBO under {}", args.run.display()),
            x_label: "nats per item".into(),
            note: Some(format!("typical (its training items' mean): {:.1}", typical.neg_elbo)),
        });
        vae::files::write_output(path, &vae::image::encode_png_rgb(&picture)?)?;
        eprintln!("{}: histogram of the scores", path.display());
    }
    let Some(other) = other else {
        return Ok(ExitCode::SUCCESS);
    };
    println!(
        "telling {} items of {} from {} items of {} (AUROC: 1 = every one of them scores as more unusual, 0.5 = chance, below 0.5 = the other way round)",
        other.names.len(),
        args.against.join(" "),
        items.names.len(),
        args.inputs.join(" ")
    );
    for (name, measure) in MEASURES {
        let of = |s: &[ItemScore]| s.iter().filter_map(|s| measure(s, &typical)).collect::<Vec<f64>>();
        if let Some(area) = auroc(&of(&scores), &of(&other_scores)) {
            println!("  {name:<21} {area:.4}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The items' scores, their codes drawn from the seed.
fn scored(model: &Model, items: &NamedItems, iw_samples: Option<usize>, seed: u64) -> Result<Vec<ItemScore>> {
    super::ensure_labels_for(model, items)?;
    Ok(score::score(model, &items.split, iw_samples, &mut seeded(seed))?)
}

/// The mean scores of the run's own training items (the first [`TYPICAL_ITEMS`]): what
/// [`vae::score`]'s typicality scores measure distance from.
fn typical_score(model: &Model, config: &RunConfig, seed: u64) -> Result<Typical> {
    let data = super::load_dataset_with(&config.train.dataset, &config.data_options())?;
    let train = data.train.take(TYPICAL_ITEMS);
    Ok(Typical::of(&score::score(model, &train, None, &mut seeded(seed))?))
}

/// A row per item, a column per score that applies to every one of them.
fn score_table(items: &NamedItems, scores: &[ItemScore], typical: &Typical) -> Table {
    let columns: Vec<_> = MEASURES
        .iter()
        .filter(|(_, m)| scores.iter().all(|s| m(s, typical).is_some()))
        .collect();
    let mut table = Table {
        text_columns: vec!["item".into(), "label".into()],
        number_columns: columns.iter().map(|(name, _)| name.to_string()).collect(),
        ..Table::default()
    };
    for (i, (name, s)) in items.names.iter().zip(scores).enumerate() {
        let label = items.labels.as_ref().map_or(String::new(), |l| l[i].clone());
        let numbers = columns.iter().map(|(_, m)| m(s, typical).unwrap_or(f64::NAN) as f32);
        table.push(vec![name.clone(), label], numbers);
    }
    table
}
