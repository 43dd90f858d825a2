//! A CVAE's condition: the one-hot label its encoder and decoder read beside the image and
//! the code; the unconditional models take none.

use super::Model;
use crate::engine::Matrix;
use crate::error::{Error, Result};

impl Model {
    /// The one-hot condition of a CVAE for `labels`; `None` for the unconditional models,
    /// which take no label.
    ///
    /// # Errors
    /// A label at or beyond the model's number of classes.
    pub fn condition(&self, labels: &[u8]) -> Result<Option<Matrix>> {
        if !self.config.kind.is_conditional() {
            return Ok(None);
        }
        let classes = self.config.classes;
        let mut c = Matrix::zeros(labels.len(), classes);
        for (row, &label) in c.data.chunks_exact_mut(classes).zip(labels) {
            let slot = row.get_mut(label as usize).ok_or_else(|| {
                Error::config(
                    "label",
                    format!("{label} is not a class of this model (it knows 0 to {})", classes - 1),
                )
            })?;
            *slot = 1.0;
        }
        Ok(Some(c))
    }

    /// Whether every one of `labels` is a class of this model (always, for the unconditional
    /// models, which ignore labels).
    ///
    /// # Errors
    /// The first label beyond the classes, named with `what`.
    pub fn check_labels(&self, labels: &[u8], what: &str) -> Result<()> {
        if !self.config.kind.is_conditional() {
            return Ok(());
        }
        match labels.iter().find(|&&l| l as usize >= self.config.classes) {
            Some(l) => Err(Error::config(
                what,
                format!(
                    "label {l} is not a class of this cvae, which knows {} classes",
                    self.config.classes
                ),
            )),
            None => Ok(()),
        }
    }

    /// The condition of `n` images to draw: all of class `label` when one is chosen, else
    /// labels 0, 1, … cycling through the classes (the label prior of a balanced dataset).
    /// `None` for unconditional models, whatever `label` says.
    ///
    /// # Errors
    /// A label at or beyond the model's number of classes.
    pub fn label_condition(&self, n: usize, label: Option<u8>) -> Result<Option<Matrix>> {
        let classes = self.config.classes.max(1);
        let labels: Vec<u8> = match label {
            Some(l) => vec![l; n],
            None => (0..n).map(|i| (i % classes) as u8).collect(),
        };
        self.condition(&labels)
    }

    /// A CVAE must be given a condition of one row per image, the others none: a caller's bug
    /// otherwise.
    pub(super) fn check_condition(&self, rows: usize, condition: Option<&Matrix>) {
        match (self.config.kind.is_conditional(), condition) {
            (true, Some(c)) => assert_eq!(
                c.shape(),
                (rows, self.config.classes),
                "a CVAE's condition needs one row of {} classes per image",
                self.config.classes
            ),
            (true, None) => panic!("a CVAE needs a condition"),
            (false, Some(_)) => panic!("only a CVAE takes a condition"),
            (false, None) => {}
        }
    }
}
