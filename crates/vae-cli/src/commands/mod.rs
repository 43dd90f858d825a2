//! One module per subcommand, and the helpers they share.

pub mod bench;
pub mod classifier;
pub mod data;
pub mod decode;
pub mod demo;
pub mod encode;
pub mod eval;
pub mod export;
pub mod fit_sampler;
pub mod latent_tools;
pub mod reconstruct;
pub mod sample;
pub mod score;
pub mod serve;
pub mod train;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use vae::classifier::{Classifier, ClassifierEpoch, ClassifierEvent, ClassifierTraining};
use vae::data::{ColorMode, DataDirs, DataOptions, Dataset, DatasetSpec, ImageSize, Location, catalog, download};
use vae::files::{write_atomic, write_output};
use vae::model::Model;
use vae::run::{RunConfig, RunDir};

use crate::progress;

/// `--sampler` / `--kind` of a fitted sampler: where codes are drawn from.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SamplerArg {
    /// The model's prior, N(0, I).
    Prior,
    /// A Gaussian mixture fitted to the training codes (`vae fit-sampler RUN --kind gmm`).
    Gmm,
    /// A second VAE trained on the training codes (`vae fit-sampler RUN --kind two-stage`).
    TwoStage,
}

impl From<SamplerArg> for vae::sampler::SamplerKind {
    fn from(a: SamplerArg) -> Self {
        match a {
            SamplerArg::Prior => vae::sampler::SamplerKind::Prior,
            SamplerArg::Gmm => vae::sampler::SamplerKind::Gmm,
            SamplerArg::TwoStage => vae::sampler::SamplerKind::TwoStage,
        }
    }
}

/// Mirrors to download `name` from: `VAE_MIRROR` (one URL, or several separated by commas)
/// replaces the canonical list.
pub fn mirrors(name: vae::data::DatasetName) -> Vec<String> {
    match std::env::var("VAE_MIRROR") {
        Ok(list) if !list.trim().is_empty() => list.split(',').map(|s| s.trim().to_string()).collect(),
        _ => download::default_mirrors(name),
    }
}

/// Downloads a named dataset into the user's data directory, with a progress bar.
pub fn fetch(name: vae::data::DatasetName, dirs: &DataDirs) -> Result<PathBuf> {
    let dir = dirs.download_dir(name);
    let bar = progress::bar(0, "{msg:>28} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}");
    let mut on_event = |event: download::DownloadEvent| match event {
        download::DownloadEvent::Verified { file } => {
            progress::println(&bar, &format!("{file}: present, checksum verified"))
        }
        download::DownloadEvent::Start { file, url, bytes } => {
            bar.set_length(bytes);
            bar.set_position(0);
            bar.set_message(file.to_string());
            if bar.is_hidden() {
                eprintln!("downloading {url}");
            }
        }
        download::DownloadEvent::Progress { received, .. } => bar.set_position(received),
        download::DownloadEvent::MirrorFailed { url, problem } => {
            progress::println(&bar, &format!("{url}: {problem}; trying the next mirror"))
        }
        download::DownloadEvent::Done { file } => {
            progress::println(&bar, &format!("{file}: downloaded, checksum verified"))
        }
    };
    let result = download::fetch(name, &dir, &mirrors(name), &mut on_event);
    bar.finish_and_clear();
    Ok(result?)
}

/// How `--dataset` is read, as a new run or the classifier asks for it.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// A folder of images: resize each to N x N or H x W (default: keep their size, which
    /// must then agree).
    #[arg(long, value_name = "N|HxW")]
    pub image_size: Option<ImageSize>,
    /// A folder of images: gray or rgb pixels (default: rgb if any image has colour).
    #[arg(long)]
    pub color: Option<ColorMode>,
    /// Share of the items held out for testing when the data has no test split of its own.
    #[arg(long, default_value_t = vae::data::options::DEFAULT_TEST_FRACTION)]
    pub test_fraction: f64,
    /// An NPY or CSV file: its labels, an NPY array of N integers or one label per line.
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// A CSV table: the column that holds the labels (header name, position from 1, or last).
    #[arg(long, value_name = "NAME|N|last")]
    pub label_column: Option<String>,
}

impl DataArgs {
    pub fn options(&self) -> DataOptions {
        DataOptions {
            image_size: self.image_size,
            color: self.color,
            test_fraction: self.test_fraction,
            labels: self.labels.clone(),
            label_column: self.label_column.clone(),
        }
    }
}

/// Loads the dataset `--dataset` names as it is, downloading a missing named one first.
pub fn load_dataset(spec: &str) -> Result<Dataset> {
    load_dataset_with(spec, &DataOptions::default())
}

/// Loads the dataset `--dataset` names, read as `options` say (a bar while a folder of images
/// is decoded), downloading a missing named one first.
pub fn load_dataset_with(spec: &str, options: &DataOptions) -> Result<Dataset> {
    let spec: DatasetSpec = spec.parse()?;
    let dirs = DataDirs::from_env();
    if let DatasetSpec::Named(name) = spec
        && let Location::Missing { .. } = catalog::locate(name, &dirs)
    {
        eprintln!(
            "dataset {name} not found locally; downloading it to {}",
            dirs.download_dir(name).display()
        );
        fetch(name, &dirs)?;
    }
    let bar = progress::bar(0, "decoding images [{bar:30}] {pos}/{len} {per_sec}");
    let shown = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let data = catalog::load_with(&spec, &dirs, options, &shown).with_context(|| format!("loading dataset {spec}"));
    bar.finish_and_clear();
    data
}

/// Writes a command's picture atomically to `RUN/name`, or to `out` when given (there a
/// character device or a FIFO, such as `/dev/null`, takes a plain write), and prints where it
/// went: the last step of every picture-drawing command.
pub fn write_picture(run: &Path, out: Option<PathBuf>, name: &str, png: &[u8]) -> Result<ExitCode> {
    let out = match out {
        Some(out) => {
            write_output(&out, png)?;
            out
        }
        None => {
            let out = run.join(name);
            write_atomic(&out, png)?;
            out
        }
    };
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Sizes the engine's thread pool: `requested`, or every core.
pub fn set_threads(requested: Option<usize>) -> Result<usize> {
    let most = vae::engine::MAX_THREADS;
    let n = match requested {
        Some(n) => {
            vae::error::ensure_in_range("--threads", n, 1..=most)?;
            n
        }
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(most),
    };
    vae::engine::set_threads(n);
    Ok(vae::engine::threads())
}

/// A trained run with the dataset it is looked at on.
pub struct LoadedRun {
    pub config: RunConfig,
    pub model: Model,
    pub data: Dataset,
}

/// Loads a run's model, and `dataset` (default: the one it trained on).
pub fn load_run(run: &Path, dataset: Option<&str>) -> Result<LoadedRun> {
    let dir = RunDir::new(run);
    let model = dir.load_model()?;
    let config = dir.read_config()?;
    let dataset = dataset.unwrap_or(&config.train.dataset);
    let data = load_dataset_with(dataset, &config.data_options_for(dataset))?;
    model.check_labels(&data.test.labels, &format!("{} test labels", data.name))?;
    Ok(LoadedRun { config, model, data })
}

/// How `vae encode` and `vae score` read their inputs.
#[derive(clap::Args, Clone, Debug)]
pub struct InputArgs {
    /// Which splits of a dataset input to take: all (training items, then test items),
    /// train or test.
    #[arg(long, value_enum, default_value = "all")]
    pub split: SplitArg,
    /// An NPY or CSV input's labels (default: the run's own, for the data it trained on).
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// A CSV input's label column (default: the run's own, for the data it trained on).
    #[arg(long, value_name = "NAME|N|last")]
    pub label_column: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum SplitArg {
    All,
    Train,
    Test,
}

/// The items of `inputs` as `config`'s model reads them (see [`vae::data::items`]), a bar
/// while a folder of images is decoded.
pub fn load_items(inputs: &[String], config: &RunConfig, args: &InputArgs) -> Result<vae::data::items::NamedItems> {
    use vae::data::items::{self, Which};
    let mut options = match inputs {
        [one] => config.data_options_for(one),
        _ => config.data_options_for(""),
    };
    if args.labels.is_some() || args.label_column.is_some() {
        (options.labels, options.label_column) = (args.labels.clone(), args.label_column.clone());
    }
    let which = match args.split {
        SplitArg::All => Which::All,
        SplitArg::Train => Which::Train,
        SplitArg::Test => Which::Test,
    };
    let bar = progress::bar(0, "decoding images [{bar:30}] {pos}/{len} {per_sec}");
    let shown = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let shape = config.model.image_shape();
    let found = items::load(inputs, shape, &options, which, &DataDirs::from_env(), &shown);
    bar.finish_and_clear();
    Ok(found?)
}

/// Writes `bytes` to `out` (atomically, or as they come to a stream such as `/dev/stdout`),
/// or to standard output when there is no `out`.
pub fn write_or_print(out: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match out {
        Some(path) => Ok(write_output(path, bytes)?),
        None => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(bytes)?;
            Ok(stdout.flush()?)
        }
    }
}

/// Pictures are of images: a run on vectors is refused, pointing to what does work.
pub fn ensure_pictures(run: &Path, model: &Model) -> Result<()> {
    let shape = model.config.image_shape();
    anyhow::ensure!(
        !shape.is_vector(),
        "{}: this run's items are {shape}, not pictures: use vae decode (codes to vectors), vae encode, vae score or vae latent-map",
        run.display()
    );
    Ok(())
}

/// A CVAE reads each item with its label: refused on items that have none.
pub fn ensure_labels_for(model: &Model, items: &vae::data::items::NamedItems) -> Result<()> {
    anyhow::ensure!(
        model.conditioning().classes().is_none() || items.labels.is_some(),
        "a cvae reads each item with its label, and these items have none (image files, or unlabelled data)"
    );
    model.check_labels(&items.split.labels, "the items' labels")?;
    Ok(())
}

/// A `--label` is for a CVAE only: refused on other runs rather than ignored.
pub fn ensure_label_fits(run: &Path, model: &Model, label: Option<u8>) -> Result<()> {
    anyhow::ensure!(
        label.is_none() || model.conditioning().classes().is_some(),
        "{}: --label needs a cvae, this run is a {}",
        run.display(),
        model.config.kind.name()
    );
    Ok(())
}

/// Trains a classifier with one progress line per epoch.
pub fn train_classifier(data: &Dataset, options: &ClassifierTraining) -> Result<Classifier> {
    eprintln!(
        "training the digit classifier on {} ({} images)",
        data.name,
        data.train.len()
    );
    let epochs = options
        .epochs
        .unwrap_or_else(|| vae::classifier::default_epochs(data.train.len()));
    let classifier = vae::classifier::train(data, options, &mut |e| print_classifier_epoch(&e, epochs))?;
    Ok(classifier)
}

fn print_classifier_epoch(e: &ClassifierEpoch, epochs: usize) {
    eprintln!(
        "classifier epoch {}/{}  loss {:.4}  test accuracy {:.2}%  {} img/s",
        e.epoch,
        epochs,
        e.train_loss,
        100.0 * e.test_accuracy,
        crate::progress::thousands(e.images_per_sec)
    )
}

/// The classifier in `dir`, or the default one of `data`, trained and saved first if absent
/// (with one progress line per epoch).
pub fn classifier_for(data: &Dataset, dir: Option<PathBuf>) -> Result<Classifier> {
    let mut epochs = 0;
    let classifier =
        vae::classifier::classifier_for(
            data,
            dir.as_deref(),
            &DataDirs::from_env().user,
            &mut |event| match event {
                ClassifierEvent::Training {
                    dir,
                    images,
                    epochs: total,
                } => {
                    epochs = total;
                    eprintln!(
                        "no classifier for {} yet in {}: training one (once) on {images} images",
                        data.name,
                        dir.display()
                    );
                }
                ClassifierEvent::Epoch(e) => print_classifier_epoch(&e, epochs),
            },
        )?;
    Ok(classifier)
}

/// A flag that the first Ctrl-C sets (training stops after the current batch, with a
/// checkpoint); a second Ctrl-C quits at once, the last checkpoint intact.
pub fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nstopping after this batch (Ctrl-C again to quit at once)…");
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}
