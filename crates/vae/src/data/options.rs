//! How a dataset is read: the size its images are brought to, their colour, and the share
//! held out for testing when the data has no test split of its own. The field names are the
//! command-line flags and the keys of a run's `config.json`.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ImageShape;
use crate::error::{Error, Result};
use crate::model::MAX_SIDE;

/// Test share of data without a test split, unless asked otherwise.
pub const DEFAULT_TEST_FRACTION: f64 = 0.1;

/// The size images are resized to: `--image-size N` (square) or `HxW`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSize {
    pub height: usize,
    pub width: usize,
}

impl FromStr for ImageSize {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let side = |t: &str| -> Result<usize> {
            match t.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
                _ => Err(Error::config(
                    "image-size",
                    format!("'{s}' is not N or HxW with sides from 1 to {MAX_SIDE}"),
                )),
            }
        };
        let (height, width) = match s.split_once(['x', 'X']) {
            Some((h, w)) => (side(h)?, side(w)?),
            None => (side(s)?, side(s)?),
        };
        Ok(ImageSize { height, width })
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.height, self.width)
    }
}

impl Serialize for ImageSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageSize {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Grey or colour pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorMode {
    /// One channel: colour images become their luma (Rec. 709 weights).
    Gray,
    /// Red, green and blue: grey images get three equal channels.
    Rgb,
}

impl ColorMode {
    /// Channels per pixel.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Gray => 1,
            ColorMode::Rgb => 3,
        }
    }
}

impl FromStr for ColorMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gray" | "grey" => Ok(ColorMode::Gray),
            "rgb" => Ok(ColorMode::Rgb),
            _ => Err(Error::config("color", format!("'{s}' is not gray or rgb"))),
        }
    }
}

/// How a dataset is read; the default reads it as it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataOptions {
    /// Resize every image to this size (default: keep the files' size, which must agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<ImageSize>,
    /// Grey or RGB (default: RGB if any image has colour, else grey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<ColorMode>,
    /// Share of the items held out for testing when the data has no test split of its own.
    #[serde(default = "default_test_fraction", skip_serializing_if = "is_default_test_fraction")]
    pub test_fraction: f64,
    /// An NPY or CSV file's labels: an NPY array of N integers, or one label per line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// A CSV table's label column: its header name, its position from 1, or `last`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
}

fn default_test_fraction() -> f64 {
    DEFAULT_TEST_FRACTION
}

fn is_default_test_fraction(f: &f64) -> bool {
    *f == DEFAULT_TEST_FRACTION
}

impl Default for DataOptions {
    fn default() -> Self {
        DataOptions {
            image_size: None,
            color: None,
            test_fraction: DEFAULT_TEST_FRACTION,
            labels: None,
            label_column: None,
        }
    }
}

impl DataOptions {
    /// These options, bringing data to the images of `shape` (what a trained model takes).
    pub fn for_shape(&self, shape: ImageShape) -> Self {
        DataOptions {
            image_size: Some(ImageSize {
                height: shape.height,
                width: shape.width,
            }),
            color: Some(if shape.is_color() {
                ColorMode::Rgb
            } else {
                ColorMode::Gray
            }),
            ..self.clone()
        }
    }

    /// Refuses a test share that leaves no training or no test items.
    pub fn validate(&self) -> Result<()> {
        if !(self.test_fraction > 0.0 && self.test_fraction < 1.0) {
            return Err(Error::config(
                "test-fraction",
                format!("must be between 0 and 1 (exclusive), got {}", self.test_fraction),
            ));
        }
        Ok(())
    }

    /// What images of `shape` become under these options: the size and colour asked for,
    /// `shape`'s own where none is.
    pub fn applied_to(&self, shape: ImageShape) -> ImageShape {
        let (height, width) = self
            .image_size
            .map_or((shape.height, shape.width), |s| (s.height, s.width));
        ImageShape {
            height,
            width,
            channels: self.color.map_or(shape.channels, |c| c.channels()),
        }
    }
}
