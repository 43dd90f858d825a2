//! `vae decode RUN CODES`: images (or vectors) from codes in an NPY or CSV file.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vae::data::{npy, table};
use vae::engine::Matrix;
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
    let codes = read_codes(&args.codes, latent)?;
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

/// Codes from `path`: NPY (items x latent, or items x 2 x latent whose means are taken) or
/// CSV (its mu_ columns, else every column).
fn read_codes(path: &std::path::Path, latent: usize) -> Result<Matrix> {
    let bad = |problem: String| anyhow::anyhow!("{}: {problem}", path.display());
    let is_npy = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let (rows, values) = if is_npy {
        let array = npy::read(path)?;
        let floats: Vec<f32> = match array.values {
            vae::data::Values::Floats(f) => f,
            vae::data::Values::Bytes(b) => b.into_iter().map(f32::from).collect(),
        };
        match array.shape[..] {
            [n, l] if l == latent => (n, floats),
            [n, 2, l] if l == latent => (n, floats.chunks_exact(2 * l).flat_map(|c| c[..l].to_vec()).collect()),
            _ => {
                return Err(bad(format!(
                    "shape {}: codes of this run are N x {latent} (or N x 2 x {latent})",
                    npy::shape_text(&array.shape)
                )));
            }
        }
    } else {
        let t = table::read(path, None).or_else(|_| table::read(path, Some("item")))?;
        let mu: Vec<usize> = t
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.starts_with("mu_"))
            .map(|(i, _)| i)
            .collect();
        let picked: Vec<usize> = if mu.is_empty() {
            (0..t.columns.len()).collect()
        } else {
            mu
        };
        if picked.len() != latent {
            return Err(bad(format!(
                "{} code columns; this run's codes have {latent}",
                picked.len()
            )));
        }
        let width = t.columns.len();
        let values = (0..t.rows)
            .flat_map(|r| picked.iter().map(move |&c| (r, c)))
            .map(|(r, c)| t.values[r * width + c])
            .collect();
        (t.rows, values)
    };
    if rows == 0 {
        return Err(bad("holds no codes".into()));
    }
    Ok(Matrix::from_vec(rows, latent, values))
}
