//! The explorer without a server: what its page asks the server for, computed here once and
//! embedded in the page (`vae export --html`), where a small JavaScript backend
//! (`offline.js`) answers the same requests, running the encoder and decoder itself.

use base64::Engine;
use serde::Serialize;

use super::ExploredModel;
use super::api::{MapResponse, ModelInfo};
use crate::engine::layer::{Activation, Layer, Stack};
use crate::engine::{Linear, Matrix};
use crate::error::{Error, Result};
use crate::model::EncoderHead;

/// Test images embedded per model: interpolation ends to pick from, a few hundred kilobytes.
pub const EMBEDDED_TEST_IMAGES: usize = 256;
/// Points of the latent map embedded per model, as many as the server's page asks for.
const MAP_POINTS: usize = 2_000;

/// The backend the exported page runs.
pub const OFFLINE_JS: &str = include_str!("offline.js");

/// One dense layer, its weights as base64 of little-endian f32.
#[derive(Serialize)]
struct Dense {
    inputs: usize,
    outputs: usize,
    relu: bool,
    /// `outputs x inputs`, row-major.
    weight: String,
    bias: String,
    /// A conditioned layer's label columns, `outputs x classes`.
    label: Option<String>,
}

/// Everything the page needs of one model.
#[derive(Serialize)]
pub struct OfflineModel {
    info: ModelInfo,
    map: MapResponse,
    /// PCA: the codes' mean and two unit axes, to place new codes on the map; `None` for 2-D
    /// codes, which are their own map.
    pca: Option<(Vec<f64>, [Vec<f64>; 2])>,
    /// The first test images, `height·width·channels` bytes each, base64.
    test_images: String,
    test_labels: Vec<u8>,
    encoder: Vec<Dense>,
    /// `[mu, logvar]`, or `[z]` for an autoencoder.
    heads: Vec<Dense>,
    decoder: Vec<Dense>,
}

fn base64_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn dense(layer: &Linear, relu: bool, label: Option<&Matrix>) -> Dense {
    Dense {
        inputs: layer.weight.value.cols,
        outputs: layer.weight.value.rows,
        relu,
        weight: base64_f32(&layer.weight.value.data),
        bias: base64_f32(&layer.bias.value.data),
        label: label.map(|m| base64_f32(&m.data)),
    }
}

/// The dense layers of a stack of them.
fn stack(s: &Stack) -> Result<Vec<Dense>> {
    s.blocks
        .iter()
        .map(|b| match &b.layer {
            Layer::Linear(l) => Ok(dense(
                l,
                b.activation == Activation::Relu,
                b.condition_weight.as_ref().map(|p| &p.value),
            )),
            _ => Err(Error::CannotExport(
                "the page without a server runs dense (mlp) models; this one has convolutions".into(),
            )),
        })
        .collect()
}

impl ExploredModel {
    /// What the exported page embeds of this model.
    ///
    /// # Errors
    /// A model the page's JavaScript cannot run (a conv body).
    pub fn offline(&self) -> Result<OfflineModel> {
        let model = &self.model;
        // First: a conv body is refused before any other work.
        let (encoder, decoder) = (stack(&model.encoder.body)?, stack(&model.decoder)?);
        let heads = match &model.encoder.head {
            EncoderHead::Code { fc_z } => vec![dense(fc_z, false, None)],
            EncoderHead::Gaussian { fc_mu, fc_logvar } => {
                vec![dense(fc_mu, false, None), dense(fc_logvar, false, None)]
            }
        };
        let shown = self.test.len().min(EMBEDDED_TEST_IMAGES);
        let images = self.test.range_batch(0, shown);
        let bytes = super::api::to_pixels(&images.data);
        let mut info = self.info();
        // The page answers from what it holds: the prior, and the test images embedded.
        info.samplers = vec!["prior"];
        info.test_images = shown;
        let map = super::map_of(self, MAP_POINTS).map_err(|e| Error::CannotExport(e.message().to_string()))?;
        Ok(OfflineModel {
            info,
            map,
            pca: self.projection.pca.clone(),
            test_images: base64::engine::general_purpose::STANDARD.encode(bytes),
            test_labels: self.test.labels[..shown].to_vec(),
            encoder,
            heads,
            decoder,
        })
    }
}
