//! What a dataset holds, said before anything trains on it (`vae data inspect PATH`): its
//! counts, image size and colour, value range, classes and split, and, for a folder of
//! images, every file that would stop a run (the first few named) rather than the first one.
//!
//! A folder's headers are read once for the sizes; its pixels are decoded once, as a run
//! would (from the cache if it is there). Only when that fails is every file decoded on its
//! own, to name each one that does not.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::arrays::{self, FileKind};
use super::catalog::{DataDirs, DatasetSpec, load_with};
use super::folder::{self, Item, Listing, Progress};
use super::options::DataOptions;
use super::{Dataset, ImageShape, ValueSummary, Values};

/// Problems named in full; more are counted.
pub const SHOWN_PROBLEMS: usize = 10;

/// What one class holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassCount {
    pub name: String,
    pub train: usize,
    pub test: usize,
}

/// What [`inspect`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    pub name: String,
    /// "a folder of images", "IDX files", "built in".
    pub kind: &'static str,
    pub train: usize,
    pub test: usize,
    /// The images as a run reads them (after `--image-size` and `--color`).
    pub shape: Option<ImageShape>,
    /// A folder's files by their own size (height, width), most common first.
    pub file_sizes: Vec<((usize, usize), usize)>,
    /// Smallest, largest and mean value over both splits, as the models read them.
    pub values: Option<ValueSummary>,
    /// Empty when unlabelled.
    pub classes: Vec<ClassCount>,
    /// How the test split came about.
    pub split: String,
    /// Files passed over: not images by their names.
    pub skipped: usize,
    /// The first [`SHOWN_PROBLEMS`] problems, one line each.
    pub problems: Vec<String>,
    /// All problems found, shown or not.
    pub problem_count: usize,
}

/// Inspects `spec` read as `options` say. Never fails: what cannot be read is a problem.
pub fn inspect(spec: &DatasetSpec, dirs: &DataDirs, options: &DataOptions, progress: Progress<'_>) -> Inspection {
    let mut found = Inspection {
        name: spec.to_string(),
        kind: "built in",
        train: 0,
        test: 0,
        shape: None,
        file_sizes: Vec::new(),
        values: None,
        classes: Vec::new(),
        split: String::new(),
        skipped: 0,
        problems: Vec::new(),
        problem_count: 0,
    };
    let listing = match spec {
        DatasetSpec::Dir(dir) if !super::catalog::is_complete(dir) => {
            found.kind = "a folder of images";
            let listing = options
                .validate()
                .and_then(|_| folder::list(dir, options.test_fraction));
            match listing {
                Ok(listing) => Some(listing),
                Err(e) => {
                    found.problem(e.to_string());
                    return found;
                }
            }
        }
        DatasetSpec::File(path) => {
            found.kind = match arrays::kind_of(path) {
                Some(FileKind::Npy) => "an NPY array",
                _ => "a CSV table",
            };
            found.split = format!(
                "{}% of each class held out by row hash (--test-fraction {})",
                100.0 * options.test_fraction,
                options.test_fraction
            );
            None
        }
        DatasetSpec::Dir(_) if spec.is_arrays() => {
            found.kind = "train and test files";
            found.split = "as given by the train and test files".into();
            None
        }
        DatasetSpec::Dir(_) => {
            found.kind = "IDX files";
            None
        }
        DatasetSpec::Named(_) => None,
    };
    if let Some(listing) = &listing {
        found.describe_listing(listing, options.test_fraction);
        let mut readable = found.probe_files(listing);
        if found.problem_count > 0 {
            // Files whose headers read may still be cut short: those are named too.
            readable = found.decode_files(readable, options, progress);
        }
        found.count_sizes(&readable);
        if found.problem_count > 0 {
            return found;
        }
        if let Err(e) = load_with(spec, dirs, options, progress).map(|data| found.describe_data(&data)) {
            // The first file that stopped the load, and any others after it.
            let readable = found.decode_files(readable, options, progress);
            found.count_sizes(&readable);
            if found.problem_count == 0 {
                found.problem(e.to_string());
            }
        }
        return found;
    }
    match load_with(spec, dirs, options, progress) {
        Ok(data) => found.describe_data(&data),
        Err(e) => found.problem(e.to_string()),
    }
    found
}

impl Inspection {
    fn problem(&mut self, line: String) {
        if self.problems.len() < SHOWN_PROBLEMS {
            self.problems.push(line);
        }
        self.problem_count += 1;
    }

    fn describe_listing(&mut self, listing: &Listing, test_fraction: f64) {
        self.train = listing.train.len();
        self.test = listing.test.len();
        self.skipped = listing.skipped;
        self.split = if listing.split_given {
            "as given by train/ and test/".into()
        } else {
            format!(
                "{}% of each class held out by path hash (--test-fraction {test_fraction})",
                100.0 * test_fraction
            )
        };
    }

    /// Reads every file's header, noting those that fail; returns the others with their
    /// sizes (height, width).
    fn probe_files<'a>(&mut self, listing: &'a Listing) -> Vec<Readable<'a>> {
        let items = items(listing);
        let probes: Vec<_> = items.par_iter().map(|item| folder::probe(&item.path)).collect();
        let mut readable = Vec::new();
        for (item, probe) in items.into_iter().zip(probes) {
            match probe {
                Ok(p) => readable.push((item, (p.height, p.width))),
                Err(e) => self.problem(e.to_string()),
            }
        }
        readable
    }

    /// Decodes each file on its own, noting each that fails; returns the others.
    fn decode_files<'a>(
        &mut self,
        files: Vec<Readable<'a>>,
        options: &DataOptions,
        progress: Progress<'_>,
    ) -> Vec<Readable<'a>> {
        let Some(&(_, (height, width))) = files.first() else {
            return files;
        };
        // Each file is decoded to see whether it can be; the size it is brought to matters not.
        let size = options.image_size.map_or((height, width), |s| (s.height, s.width));
        let shape = ImageShape {
            height: size.0,
            width: size.1,
            channels: 3,
        };
        let done = AtomicUsize::new(0);
        let results: Vec<Option<String>> = files
            .par_iter()
            .map(|(item, _)| {
                let mut out = vec![0u8; shape.values()];
                let result = folder::decode_into(&item.path, shape, &mut out);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, files.len());
                result.err().map(|e| e.to_string())
            })
            .collect();
        let mut survivors = Vec::new();
        for (file, failure) in files.into_iter().zip(results) {
            match failure {
                Some(line) => self.problem(line),
                None => survivors.push(file),
            }
        }
        survivors
    }

    /// The sizes of `files`, most common first.
    fn count_sizes(&mut self, files: &[Readable<'_>]) {
        let mut sizes = BTreeMap::<(usize, usize), usize>::new();
        for (_, size) in files {
            *sizes.entry(*size).or_default() += 1;
        }
        let mut sizes: Vec<_> = sizes.into_iter().collect();
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.file_sizes = sizes;
    }

    fn describe_data(&mut self, data: &Dataset) {
        self.name = data.name.clone();
        self.train = data.train.len();
        self.test = data.test.len();
        self.shape = Some(data.shape());
        self.values = Values::summary([&data.train.images.values, &data.test.images.values]);
        if data.labelled {
            let count = |labels: &[u8], c: usize| labels.iter().filter(|&&l| l as usize == c).count();
            self.classes = (0..data.classes())
                .map(|c| ClassCount {
                    name: data.class_names.get(c).cloned().unwrap_or_else(|| c.to_string()),
                    train: count(&data.train.labels, c),
                    test: count(&data.test.labels, c),
                })
                .collect();
        }
        if self.split.is_empty() {
            self.split = "as the dataset gives it".into();
        }
    }
}

/// A file whose header reads, with its size (height, width).
type Readable<'a> = (&'a Item, (usize, usize));

fn items(listing: &Listing) -> Vec<&Item> {
    listing.train.iter().chain(&listing.test).collect()
}
