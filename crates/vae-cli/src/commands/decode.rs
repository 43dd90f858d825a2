//! `vae decode RUN CODES`: images (or vectors) from codes in an NPY or CSV file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vae::image::{GridLayout, encode_png, single_image, tile_grid};
use vae::output::{Table, TableFormat};
use vae::run::RunDir;

#[derive(clap::Args)]
pub struct Args {
    /// The run folder.
    run: PathBuf,
    /// The codes: an NPY array of items x latent (or items x 2 x latent, as `vae encode`
    /// writes it: the means are decoded), or a CSV table whose mu_1.. columns (else all
    /// columns) are the codes.
    codes: PathBuf,
    /// CVAE: the class to decode every code as.
    #[arg(long)]
    label: Option<u8>,
    /// Where the images go: a grid, FILE.png (default RUN/decoded.png), or a folder, one
    /// PNG per code; vectors: FILE.csv or FILE.npy (default: CSV on standard output).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let model = run.load_model()?;
    super::ensure_label_fits(&args.run, &model, args.label)?;
    let latent = model.config.latent;
    let codes = vae::score::read_codes(&args.codes, latent)?;
    let condition = match model.conditioning().classes() {
        Some(_) => {
            let label = args.label.with_context(|| {
                format!(
                    "{}: a cvae decodes a code with a label: pass --label",
                    args.run.display()
                )
            })?;
            model.condition(&vec![label; codes.rows])?
        }
        None => None,
    };
    let decoded = model.decode(&codes, condition.as_ref());
    let shape = model.config.image_shape();
    if shape.is_vector() {
        let mut table = Table {
            text_columns: vec!["code".into()],
            number_columns: (1..=shape.width).map(|j| format!("value_{j}")).collect(),
            ..Table::default()
        };
        for (i, row) in decoded.data.chunks_exact(shape.width).enumerate() {
            table.push(vec![i.to_string()], row.iter().copied());
        }
        let bytes = match args.out.as_deref().map(TableFormat::of).transpose()? {
            Some(TableFormat::Npy) => table.to_npy(&[table.rows(), shape.width]),
            _ => table.to_csv(),
        };
        super::write_or_print(args.out.as_deref(), &bytes)?;
        return Ok(ExitCode::SUCCESS);
    }
    match &args.out {
        Some(dir) if dir.extension().is_none_or(|e| !e.eq_ignore_ascii_case("png")) => {
            std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot make the folder", dir.display()))?;
            let width = (decoded.rows.max(1) - 1).to_string().len().max(5);
            for i in 0..decoded.rows {
                let picture = single_image(decoded.row(i), shape);
                vae::files::write_atomic(&dir.join(format!("{i:0width$}.png")), &encode_png(&picture)?)?;
            }
            println!("{}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        out => {
            let columns = (decoded.rows as f64).sqrt().ceil().max(1.0) as usize;
            let layout = GridLayout::of(shape, columns);
            layout.ensure_fits(decoded.rows)?;
            let picture = tile_grid(&decoded, layout);
            super::write_picture(&args.run, out.clone(), "decoded.png", &encode_png(&picture)?)
        }
    }
}
