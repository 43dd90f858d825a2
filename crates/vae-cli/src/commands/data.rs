//! `vae data list` and `vae data fetch NAME`.

use std::process::ExitCode;

use anyhow::Result;
use vae::data::{DataDirs, DatasetName, DatasetSpec, Location, catalog};

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
}

pub fn run(command: Command) -> Result<ExitCode> {
    let dirs = DataDirs::from_env();
    match command {
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
