//! A model's condition: what its encoder and decoder read beside the image and the code. The
//! CVAE reads a one-hot label; the unconditional models read nothing, and every question
//! about labels is answered here rather than by asking the model's kind.

use super::{Model, ModelConfig, ModelKind};
use crate::engine::Matrix;
use crate::error::{Error, Result};

/// What a model reads beside the image and the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conditioning {
    /// Nothing (the autoencoder and the VAE).
    Unconditional,
    /// A one-hot label of `classes` columns (the CVAE): `q(z|x, y)`, `p(x|z, y)`.
    Label { classes: usize },
}

impl Conditioning {
    /// The number of classes of a label-conditioned model.
    pub fn classes(self) -> Option<usize> {
        match self {
            Conditioning::Unconditional => None,
            Conditioning::Label { classes } => Some(classes),
        }
    }

    /// The one-hot condition for `labels`; `None` for an unconditional model, which takes no
    /// label.
    ///
    /// # Errors
    /// A label at or beyond the number of classes.
    pub fn one_hot(self, labels: &[u8]) -> Result<Option<Matrix>> {
        let Conditioning::Label { classes } = self else {
            return Ok(None);
        };
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

    /// Whether every one of `labels` is a class (always, for an unconditional model, which
    /// ignores labels).
    ///
    /// # Errors
    /// The first label beyond the classes, named with `what`.
    pub fn check_labels(self, labels: &[u8], what: &str) -> Result<()> {
        let Conditioning::Label { classes } = self else {
            return Ok(());
        };
        match labels.iter().find(|&&l| l as usize >= classes) {
            Some(l) => Err(Error::config(
                what,
                format!("label {l} is not a class of this cvae, which knows {classes} classes"),
            )),
            None => Ok(()),
        }
    }

    /// The condition of `n` images to draw: all of class `label` when one is chosen, else
    /// labels 0, 1, … cycling through the classes (the label prior of a balanced dataset).
    /// `None` for an unconditional model, whatever `label` says.
    ///
    /// # Errors
    /// A label at or beyond the number of classes.
    pub fn for_draws(self, n: usize, label: Option<u8>) -> Result<Option<Matrix>> {
        match self.draw_labels(n, label) {
            Some(labels) => self.one_hot(&labels),
            None => Ok(None),
        }
    }

    /// The labels behind [`Conditioning::for_draws`]: `label` n times, or 0, 1, … cycling
    /// through the classes; `None` for an unconditional model.
    pub fn draw_labels(self, n: usize, label: Option<u8>) -> Option<Vec<u8>> {
        let classes = self.classes()?;
        Some(match label {
            Some(l) => vec![l; n],
            None => (0..n).map(|i| (i % classes) as u8).collect(),
        })
    }

    /// A labelled model must be given a condition of one row per image, the others none: a
    /// caller's bug otherwise.
    fn check_rows(self, rows: usize, condition: Option<&Matrix>) {
        match (self, condition) {
            (Conditioning::Label { classes }, Some(c)) => assert_eq!(
                c.shape(),
                (rows, classes),
                "a CVAE's condition needs one row of {classes} classes per image"
            ),
            (Conditioning::Label { .. }, None) => panic!("a CVAE needs a condition"),
            (Conditioning::Unconditional, Some(_)) => panic!("only a CVAE takes a condition"),
            (Conditioning::Unconditional, None) => {}
        }
    }
}

impl ModelConfig {
    /// What a model of this config reads beside the image and the code.
    pub fn conditioning(&self) -> Conditioning {
        match self.kind {
            ModelKind::Cvae => Conditioning::Label { classes: self.classes },
            ModelKind::Ae | ModelKind::Vae => Conditioning::Unconditional,
        }
    }
}

impl Model {
    /// What encoder and decoder read beside the image and the code: a CVAE's label, or
    /// nothing (derived from the config, so it cannot disagree with it).
    pub fn conditioning(&self) -> Conditioning {
        self.config.conditioning()
    }

    /// The one-hot condition of a CVAE for `labels` ([`Conditioning::one_hot`]).
    ///
    /// # Errors
    /// A label at or beyond the model's number of classes.
    pub fn condition(&self, labels: &[u8]) -> Result<Option<Matrix>> {
        self.conditioning().one_hot(labels)
    }

    /// Whether every one of `labels` is a class of this model ([`Conditioning::check_labels`]).
    ///
    /// # Errors
    /// The first label beyond the classes, named with `what`.
    pub fn check_labels(&self, labels: &[u8], what: &str) -> Result<()> {
        self.conditioning().check_labels(labels, what)
    }

    /// The condition of `n` images to draw ([`Conditioning::for_draws`]).
    ///
    /// # Errors
    /// A label at or beyond the model's number of classes.
    pub fn label_condition(&self, n: usize, label: Option<u8>) -> Result<Option<Matrix>> {
        self.conditioning().for_draws(n, label)
    }

    /// A CVAE must be given a condition of one row per image, the others none.
    pub(super) fn check_condition(&self, rows: usize, condition: Option<&Matrix>) {
        self.conditioning().check_rows(rows, condition);
    }
}
