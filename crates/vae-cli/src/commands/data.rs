//! `vae data list`, `vae data fetch NAME` and `vae data inspect PATH`.

use std::process::ExitCode;

use anyhow::Result;
use vae::data::{DataDirs, DataOptions, DatasetName, DatasetSpec, Location, catalog, inspect};

use crate::progress;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Show every dataset, where it was found or why not, and its sizes.
    List,
    /// Download a dataset into $VAE_DATA_DIR (default ~/.cache/vae).
    Fetch {
        /// mnist or fashion-mnist.
        name: String,
        /// Download even if the dataset is already present elsewhere.
        #[arg(long)]
        force: bool,
    },
    /// Say what a dataset holds: counts, image size and colour, values, classes, the split,
    /// and every file that would stop a run (exit status 1 if there is one).
    Inspect {
        /// A dataset name, or a folder of IDX files or of images.
        path: String,
        #[command(flatten)]
        data: super::DataArgs,
    },
}

pub fn run(command: Command) -> Result<ExitCode> {
    let dirs = DataDirs::from_env();
    match command {
        Command::Inspect { path, data } => inspect(&path, &data.options(), &dirs),
        Command::List => {
            for name in DatasetName::ALL {
                println!("{name}: {}", name.description());
                match catalog::locate(name, &dirs) {
                    Location::Missing { searched } => {
                        let searched: Vec<String> = searched.iter().map(|p| p.display().to_string()).collect();
                        println!(
                            "  missing: searched {}; get it with `vae data fetch {name}`",
                            searched.join(", ")
                        );
                    }
                    location => {
                        let place = match &location {
                            Location::Dir(dir) => dir.display().to_string(),
                            _ => "built in".to_string(),
                        };
                        match catalog::load(&DatasetSpec::Named(name), &dirs) {
                            Ok(d) => println!("  {place}: {} train / {} test images", d.train.len(), d.test.len()),
                            Err(e) => println!("  {place}: unreadable: {e}"),
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch { name, force } => {
            let name = match name.parse::<DatasetSpec>() {
                Ok(DatasetSpec::Named(n)) if n != DatasetName::MnistSample => n,
                Ok(DatasetSpec::Named(n)) => anyhow::bail!("{n} is built in: nothing to download"),
                _ => anyhow::bail!("unknown dataset '{name}': `vae data fetch` knows mnist and fashion-mnist"),
            };
            if let (Location::Dir(dir), false) = (catalog::locate(name, &dirs), force) {
                println!(
                    "{name} is already present in {} (pass --force to download anyway)",
                    dir.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let dir = super::fetch(name, &dirs)?;
            println!("{name}: all files verified in {}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn inspect(path: &str, options: &DataOptions, dirs: &DataDirs) -> Result<ExitCode> {
    let spec: DatasetSpec = path.parse()?;
    let bar = progress::bar(0, "reading images [{bar:30}] {pos}/{len} {per_sec}");
    let shown = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let found = inspect::inspect(&spec, dirs, options, &shown);
    bar.finish_and_clear();
    let n = progress::thousands;
    println!("{}: {}", found.name, found.kind);
    if found.train + found.test > 0 {
        println!(
            "  {} items: {} train / {} test",
            n((found.train + found.test) as f64),
            n(found.train as f64),
            n(found.test as f64)
        );
    }
    if !found.split.is_empty() {
        println!("  split: {}", found.split);
    }
    if let Some(shape) = found.shape {
        if shape.is_vector() {
            println!("  items: {shape}");
        } else {
            println!("  images: {shape} ({} values each)", shape.values());
        }
    }
    if !found.file_sizes.is_empty() {
        let sizes: Vec<String> = found
            .file_sizes
            .iter()
            .take(5)
            .map(|((h, w), count)| format!("{h}x{w} ({})", n(*count as f64)))
            .collect();
        let more = found.file_sizes.len().saturating_sub(5);
        println!(
            "  files: {}{}",
            sizes.join(", "),
            if more > 0 {
                format!(" and {more} other sizes")
            } else {
                String::new()
            }
        );
    }
    match found.values {
        Some(v) if v.bytes => println!(
            "  values: {} to {}, mean {:.1} (bytes; the models see them divided by 255)",
            (v.min * 255.0).round(),
            (v.max * 255.0).round(),
            v.mean * 255.0
        ),
        Some(v) => println!(
            "  values: {} to {}, mean {} (numbers, used as they are)",
            number(v.min),
            number(v.max),
            number(v.mean)
        ),
        None => {}
    }
    if found.classes.is_empty() && found.shape.is_some() {
        println!("  classes: none (unlabelled)");
    } else if !found.classes.is_empty() {
        println!("  classes ({}):", found.classes.len());
        for c in &found.classes {
            println!(
                "    {:>7}  {} ({} train / {} test)",
                n((c.train + c.test) as f64),
                c.name,
                c.train,
                c.test
            );
        }
    }
    if found.skipped > 0 {
        println!("  skipped: {} files that are not images by their names", found.skipped);
    }
    if found.problem_count == 0 {
        println!("  problems: none");
        return Ok(ExitCode::SUCCESS);
    }
    println!("  problems ({}):", found.problem_count);
    for line in &found.problems {
        println!("    {line}");
    }
    if found.problem_count > found.problems.len() {
        println!("    ... and {} more", found.problem_count - found.problems.len());
    }
    Ok(ExitCode::FAILURE)
}

/// A value as short as it reads well: at most 4 significant digits after the point.
fn number(v: f64) -> String {
    let text = format!("{v:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".into() } else { text.to_string() }
}
