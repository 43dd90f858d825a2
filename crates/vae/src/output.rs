//! Tables the tool writes for other programs: one row per item, a few text columns (which
//! item, its label) then numbers, as CSV with a header, or the numbers alone as NPY.

use std::path::Path;

use crate::data::npy;
use crate::error::{Error, Result};

/// A table of items: text columns, then number columns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub text_columns: Vec<String>,
    pub number_columns: Vec<String>,
    /// Each row's text cells, as many as `text_columns`.
    pub text: Vec<Vec<String>>,
    /// rows x number_columns, row after row.
    pub numbers: Vec<f32>,
}

impl Table {
    /// Rows so far.
    pub fn rows(&self) -> usize {
        self.text.len()
    }

    /// Adds a row.
    pub fn push(&mut self, text: Vec<String>, numbers: impl IntoIterator<Item = f32>) {
        debug_assert_eq!(text.len(), self.text_columns.len());
        self.text.push(text);
        self.numbers.extend(numbers);
        debug_assert_eq!(self.numbers.len(), self.rows() * self.number_columns.len());
    }

    /// The table as CSV: a header, then a row per item (numbers written so that they read
    /// back to the same `f32`).
    pub fn to_csv(&self) -> Vec<u8> {
        let mut out = csv::Writer::from_writer(Vec::new());
        let header = self.text_columns.iter().chain(&self.number_columns);
        out.write_record(header).expect("writing to memory");
        let width = self.number_columns.len();
        for (r, text) in self.text.iter().enumerate() {
            let numbers = self.numbers[r * width..(r + 1) * width].iter().map(|v| v.to_string());
            out.write_record(text.iter().cloned().chain(numbers))
                .expect("writing to memory");
        }
        out.into_inner().expect("writing to memory")
    }

    /// The numbers as a float32 NPY array of `shape` (its product: all the numbers).
    pub fn to_npy(&self, shape: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        npy::write_f32(&mut out, shape, &self.numbers).expect("writing to memory");
        out
    }
}

/// How a table is written, by the name of its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Npy,
}

impl TableFormat {
    /// `.csv` or `.npy`; anything else is refused, naming the file.
    pub fn of(path: &Path) -> Result<TableFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(TableFormat::Csv),
            Some("npy") => Ok(TableFormat::Npy),
            _ => Err(Error::data_file(
                path,
                "is neither .csv nor .npy: the table's format goes by its name",
            )),
        }
    }
}
