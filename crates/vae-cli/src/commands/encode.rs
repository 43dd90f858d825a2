//! `vae encode RUN INPUT...`: each item's code, the posterior's mean and standard deviation
//! (an autoencoder's code alone), as CSV or NPY.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use vae::output::{Table, TableFormat};
use vae::run::RunDir;
use vae::score;

use super::InputArgs;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// What to encode: datasets as --dataset takes them, or image files.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Where the codes go: FILE.csv (item, label, mu_1.., sigma_1..) or FILE.npy (items x 2
    /// x latent: mean then standard deviation; items x latent for an autoencoder); default:
    /// CSV on standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    input: InputArgs,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let model = run.load_model()?;
    let config = run.read_config()?;
    let items = super::load_items(&args.inputs, &config, &args.input)?;
    super::ensure_labels_for(&model, &items)?;
    let codes = score::encode(&model, &items.split)?;
    let latent = model.config.latent;
    let mut table = Table {
        text_columns: vec!["item".into(), "label".into()],
        number_columns: (1..=latent).map(|j| format!("mu_{j}")).collect(),
        ..Table::default()
    };
    if codes.std.is_some() {
        table.number_columns.extend((1..=latent).map(|j| format!("sigma_{j}")));
    }
    for (i, name) in items.names.iter().enumerate() {
        let label = items.labels.as_ref().map_or(String::new(), |l| l[i].clone());
        let mean = &codes.mean.data[i * latent..(i + 1) * latent];
        let std = codes
            .std
            .as_ref()
            .map_or(&[][..], |s| &s.data[i * latent..(i + 1) * latent]);
        table.push(vec![name.clone(), label], mean.iter().chain(std).copied());
    }
    let bytes = match args.out.as_deref().map(TableFormat::of).transpose()? {
        Some(TableFormat::Npy) if codes.std.is_some() => table.to_npy(&[table.rows(), 2, latent]),
        Some(TableFormat::Npy) => table.to_npy(&[table.rows(), latent]),
        Some(TableFormat::Csv) | None => table.to_csv(),
    };
    super::write_or_print(args.out.as_deref(), &bytes)?;
    if let Some(out) = &args.out {
        eprintln!("{}: codes of {} items", out.display(), table.rows());
    }
    Ok(ExitCode::SUCCESS)
}
