//! What a dataset holds, said before anything trains on it (`vae data inspect PATH`): its
//! counts, image size and colour, value range, classes and split, and, for a folder of
//! images, every file that would stop a run (the first few named) rather than the first one.

use std::collections::BTreeMap;
use std::sync::Mutex;

use rayon::prelude::*;

use super::catalog::{DataDirs, DatasetSpec, load_with};
use super::folder::{self, Listing, Progress};
use super::options::DataOptions;
use super::{Dataset, ImageShape};

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
    /// Smallest and largest byte, and the mean, over every value of both splits.
    pub values: Option<(u8, u8, f64)>,
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
    match spec {
        DatasetSpec::Dir(dir) if !super::catalog::is_complete(dir) => {
            found.kind = "a folder of images";
            if let Err(e) = options.validate() {
                found.problem(e.to_string());
                return found;
            }
            let listing = match folder::list(dir, options.test_fraction) {
                Ok(listing) => listing,
                Err(e) => {
                    found.problem(e.to_string());
                    return found;
                }
            };
            found.describe_listing(&listing, options.test_fraction);
            found.check_files(&listing, progress);
            if found.problem_count > 0 {
                return found;
            }
        }
        DatasetSpec::Dir(_) => found.kind = "IDX files",
        DatasetSpec::Named(_) => {}
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

    /// Decodes every file, noting those that fail and the sizes of those that do not.
    fn check_files(&mut self, listing: &Listing, progress: Progress<'_>) {
        let items: Vec<&folder::Item> = listing.train.iter().chain(&listing.test).collect();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let sizes = Mutex::new(BTreeMap::<(usize, usize), usize>::new());
        let mut failures: Vec<(usize, String)> = items
            .par_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let result = folder::decode_size(&item.path);
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, items.len());
                match result {
                    Ok(size) => {
                        *sizes.lock().expect("no panics while held").entry(size).or_default() += 1;
                        None
                    }
                    Err(e) => Some((i, e.to_string())),
                }
            })
            .collect();
        failures.sort();
        for (_, line) in failures {
            self.problem(line);
        }
        let mut sizes: Vec<_> = sizes.into_inner().expect("no panics while held").into_iter().collect();
        sizes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        self.file_sizes = sizes;
    }

    fn describe_data(&mut self, data: &Dataset) {
        self.name = data.name.clone();
        self.train = data.train.len();
        self.test = data.test.len();
        self.shape = Some(data.shape());
        let all = || data.train.images.pixels.iter().chain(&data.test.images.pixels);
        let (mut low, mut high, mut sum) = (u8::MAX, u8::MIN, 0u64);
        for &v in all() {
            (low, high, sum) = (low.min(v), high.max(v), sum + v as u64);
        }
        let n = data.train.images.pixels.len() + data.test.images.pixels.len();
        self.values = (n > 0).then(|| (low, high, sum as f64 / n as f64));
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
