//! The latent explorer behind `vae serve`: trained models held in memory, answering the JSON
//! API of the page (`page.html`, compiled in) from any number of threads at once. No HTTP
//! here: one typed method per route ([`Explorer::list`], [`Explorer::decode`], …) takes its
//! parsed request ([`api::parse_body`], [`api::parse_query`]) and returns its answer or an
//! [`api::ApiError`], so the server (an axum router in the binary) stays a thin layer and the
//! whole API can be tested and fuzzed without a socket.

pub mod api;
pub mod offline;

use base64::Engine;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::data::Split;
use crate::data::catalog::class_names;
use crate::engine::Matrix;
use crate::error::{Error, Result};
use crate::image::{Picture, encode_png};
use crate::latent::{Projection, codes_of, encode_codes, interpolate, project_2d};
use crate::model::{Conditioning, Latent, Model, Workspace};
use crate::sampler::Sampler;

use api::*;

/// The page, served at `/`.
pub const PAGE: &str = include_str!("page.html");

/// A trained model and what the page shows of it.
pub struct ExploredModel {
    /// The run folder's name: how requests refer to the model.
    pub name: String,
    pub model: Model,
    pub dataset: String,
    pub epochs: usize,
    test: Split,
    class_names: Vec<String>,
    /// The test codes projected to 2-D, and how.
    projection: Projection,
    bounds: Bounds,
    /// What codes are drawn from: the prior first, then any fitted sampler.
    samplers: Vec<Sampler>,
}

impl ExploredModel {
    /// Encodes the test split once for the latent map.
    ///
    /// # Errors
    /// Test labels the model (a CVAE) cannot take.
    pub fn new(name: String, model: Model, dataset: String, epochs: usize, test: Split) -> Result<Self> {
        let shape = model.config.image_shape();
        if shape.is_vector() {
            return Err(Error::config(
                "run",
                format!(
                    "the explorer shows pictures, and this run's items are {shape}: use vae encode, decode and score"
                ),
            ));
        }
        model.check_labels(&test.labels, "test labels")?;
        let shown = test.take(MAX_MAP_POINTS);
        let codes = encode_codes(&model, &shown.range_batch(0, shown.len()), &shown.labels)?;
        let projection = project_2d(&codes);
        let bounds = bounds(&projection.points);
        // The dataset's names, unless a CVAE knows more classes than they name: then numbers.
        let mut names = class_names(&dataset, 10);
        let classes = model.config.classes;
        if classes > 0 && names.len() != classes {
            names = (0..classes).map(|c| c.to_string()).collect();
        }
        Ok(ExploredModel {
            name,
            class_names: names,
            samplers: vec![Sampler::prior_of(&model)],
            model,
            dataset,
            epochs,
            test,
            projection,
            bounds,
        })
    }

    /// Names the classes as the dataset does (a folder's sub-folders), where it names as many
    /// as the map's labels need.
    pub fn with_class_names(mut self, names: Vec<String>) -> Self {
        let needed = self
            .test
            .labels
            .iter()
            .map(|&l| l as usize + 1)
            .max()
            .unwrap_or(0)
            .max(self.model.config.classes);
        if names.len() >= needed {
            self.class_names = names;
        }
        self
    }

    /// Serves `sampler` beside the prior (in place of one of the same kind).
    pub fn add_sampler(&mut self, sampler: Sampler) {
        self.samplers.retain(|s| s.kind() != sampler.kind());
        self.samplers.push(sampler);
    }

    fn info(&self) -> ModelInfo {
        let c = &self.model.config;
        let shape = c.image_shape();
        ModelInfo {
            name: self.name.clone(),
            height: shape.height,
            width: shape.width,
            channels: shape.channels,
            kind: c.kind.name(),
            arch: c.arch.name(),
            latent: c.latent,
            classes: c.classes,
            class_names: self.class_names.clone(),
            dataset: self.dataset.clone(),
            test_images: self.test.len(),
            epochs: self.epochs,
            samplers: self.samplers.iter().map(|s| s.kind().name()).collect(),
        }
    }

    /// The condition of `rows` rows: a CVAE needs a label (one for all, or one per row), the
    /// other models take none.
    fn condition(&self, rows: usize, label: Option<u8>, labels: Option<&[u8]>) -> Result<Option<Matrix>, ApiError> {
        let classes = self.model.conditioning().classes();
        let labels: Vec<u8> = match (classes, label, labels) {
            (None, None, None) => return Ok(None),
            (None, _, _) => {
                return Err(ApiError::Invalid(format!(
                    "label: {} is a {}, which takes no label",
                    self.name,
                    self.model.config.kind.name()
                )));
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(ApiError::Invalid("give label or labels, not both".into()));
            }
            (Some(_), Some(l), None) => vec![l; rows],
            (Some(_), None, Some(ls)) if ls.len() == rows => ls.to_vec(),
            (Some(_), None, Some(ls)) => {
                return Err(ApiError::Invalid(format!(
                    "labels: expected one per row ({rows}), got {}",
                    ls.len()
                )));
            }
            (Some(classes), None, None) => {
                return Err(ApiError::Invalid(format!(
                    "label: {} is a cvae and needs the class to draw (0 to {})",
                    self.name,
                    classes - 1
                )));
            }
        };
        self.model
            .condition(&labels)
            .map_err(|e| ApiError::Invalid(e.to_string()))
    }

    fn decode(&self, codes: &Matrix, condition: Option<&Matrix>) -> Vec<Pixels> {
        let images = self.model.decode(codes, condition);
        (0..images.rows).map(|r| to_pixels(images.row(r))).collect()
    }

    /// An interpolation end as pixels in [0, 1] and its label (a test image's own label).
    fn end(&self, end: &End, field: &str) -> Result<(Vec<f32>, Option<u8>), ApiError> {
        match end {
            End {
                index: Some(index),
                image: None,
                label: None,
            } => {
                let (image, label) = self.test_image(*index)?;
                let label = self.model.conditioning().classes().map(|_| label);
                Ok((image.data, label))
            }
            End {
                index: None,
                image: Some(image),
                label,
            } => {
                check_image(&format!("{field}.image"), image, self.model.config.pixels())?;
                Ok((image.clone(), *label))
            }
            _ => Err(ApiError::Invalid(format!(
                "{field}: give a test image's index, or an image (with its label for a cvae)"
            ))),
        }
    }

    fn test_image(&self, index: usize) -> Result<(Matrix, u8), ApiError> {
        if index >= self.test.len() {
            return Err(ApiError::NotFound(format!(
                "test image {index}: {} has {} test images",
                self.name,
                self.test.len()
            )));
        }
        Ok((self.test.range_batch(index, index + 1), self.test.labels[index]))
    }
}

/// A box holding the middle 99% of the points on each axis, padded by a tenth of its size.
fn bounds(points: &Matrix) -> Bounds {
    let axis = |k: usize| {
        let mut v: Vec<f32> = (0..points.rows).map(|r| points.row(r)[k]).collect();
        v.sort_by(f32::total_cmp);
        let at = |q: f64| {
            v.get(((v.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(0.0)
        };
        let (lo, hi) = (at(0.005), at(0.995));
        let pad = ((hi - lo) * 0.1).max(0.5);
        [lo - pad, hi + pad]
    };
    Bounds { x: axis(0), y: axis(1) }
}

/// The models the explorer serves.
pub struct Explorer {
    models: Vec<ExploredModel>,
}

impl Explorer {
    /// # Errors
    /// No model, or two with the same name.
    pub fn new(models: Vec<ExploredModel>) -> Result<Self> {
        if models.is_empty() {
            return Err(Error::config("runs", "the explorer needs at least one run"));
        }
        for (i, m) in models.iter().enumerate() {
            if models[..i].iter().any(|o| o.name == m.name) {
                return Err(Error::config(
                    "runs",
                    format!("two runs are named {}: give runs with distinct folder names", m.name),
                ));
            }
        }
        Ok(Explorer { models })
    }

    pub fn models(&self) -> &[ExploredModel] {
        &self.models
    }

    fn find(&self, name: &str) -> Result<&ExploredModel, ApiError> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
            ApiError::NotFound(format!(
                "model {name:?}: not served here (serving {})",
                known.join(", ")
            ))
        })
    }

    /// The models served, as the page lists them.
    pub fn list(&self) -> ModelsResponse {
        ModelsResponse {
            models: self.models.iter().map(ExploredModel::info).collect(),
        }
    }

    /// Decodes codes into images.
    pub fn decode(&self, request: DecodeRequest) -> Result<ImagesResponse, ApiError> {
        let m = self.find(&request.model)?;
        let rows = request.z.len();
        if rows == 0 || rows > MAX_ROWS {
            return Err(ApiError::Invalid(format!("z: 1 to {MAX_ROWS} codes, got {rows}")));
        }
        let latent = m.model.config.latent;
        let mut codes = Matrix::zeros(rows, latent);
        for (r, z) in request.z.iter().enumerate() {
            check_vector(&format!("z[{r}]"), z, latent)?;
            codes.row_mut(r).copy_from_slice(z);
        }
        let condition = m.condition(rows, request.label, request.labels.as_deref())?;
        let shape = m.model.config.image_shape();
        let images = m
            .decode(&codes, condition.as_ref())
            .into_iter()
            .map(|pixels| match request.format {
                ImageFormat::Pixels => Image::Pixels(pixels),
                ImageFormat::Png => {
                    let png = encode_png(&Picture {
                        width: shape.width,
                        height: shape.height,
                        channels: shape.channels,
                        pixels,
                    })
                    .expect("PNG encoding of a small image in memory");
                    Image::Png(base64::engine::general_purpose::STANDARD.encode(png))
                }
            });
        Ok(ImagesResponse {
            images: images.collect(),
        })
    }

    /// The posterior of one image, its reconstruction, and its place on the map.
    pub fn encode(&self, request: EncodeRequest) -> Result<EncodeResponse, ApiError> {
        let m = self.find(&request.model)?;
        let pixels = m.model.config.pixels();
        check_image("image", &request.image, pixels)?;
        let x = Matrix::from_vec(1, pixels, request.image);
        let condition = m.condition(1, request.label, None)?;
        // One pass decoding the posterior mean: z = μ (the code of an autoencoder), σ beside it.
        let mut ws = Workspace::default();
        m.model
            .forward::<crate::rng::RunRng>(&x, condition.as_ref(), &mut ws, Latent::Mean);
        let mut reconstruction = Matrix::default();
        m.model.outputs_into(&ws.logits, &mut reconstruction);
        let sigma = m.model.encoder.head.spread(&ws).map(|s| s.data.clone());
        Ok(EncodeResponse {
            map_point: m.projection.project(&ws.z.data),
            mu: ws.z.data,
            sigma,
            reconstruction: to_pixels(&reconstruction.data),
        })
    }

    /// The decoded path between the codes of two images (test images or drawings).
    pub fn interpolate(&self, request: InterpolateRequest) -> Result<InterpolateResponse, ApiError> {
        let m = self.find(&request.model)?;
        if request.steps == 0 || request.steps > MAX_STEPS {
            return Err(ApiError::Invalid(format!(
                "steps: 1 to {MAX_STEPS}, got {}",
                request.steps
            )));
        }
        let (a, label_a) = m.end(&request.from, "from")?;
        let (b, label_b) = m.end(&request.to, "to")?;
        let ends = Matrix::from_vec(2, a.len(), [a.as_slice(), b.as_slice()].concat());
        let condition = match (label_a, label_b) {
            (None, None) => m.condition(2, None, None)?,
            (Some(la), Some(lb)) => m.condition(2, None, Some(&[la, lb]))?,
            _ => m.condition(2, label_a.or(label_b), None)?,
        };
        let codes = codes_of(&m.model, &ends, condition.as_ref());
        let frames = request.steps + 1;
        let path = interpolate(codes.row(0), codes.row(1), frames, request.slerp);
        // A CVAE's label is blended along the path as the code is.
        let path_condition = condition.map(|c| interpolate(c.row(0), c.row(1), frames, false));
        Ok(InterpolateResponse {
            codes: (0..frames).map(|r| path.row(r).to_vec()).collect(),
            images: m.decode(&path, path_condition.as_ref()),
            from_image: to_pixels(&a),
            to_image: to_pixels(&b),
        })
    }

    /// Codes drawn from the prior (or the fitted sampler asked for) and decoded.
    pub fn sample(&self, query: SampleQuery) -> Result<SampleResponse, ApiError> {
        let m = self.find(&query.model)?;
        if query.n == 0 || query.n > MAX_ROWS {
            return Err(ApiError::Invalid(format!("n: 1 to {MAX_ROWS}, got {}", query.n)));
        }
        let wanted = query.sampler.as_deref().unwrap_or("prior");
        let sampler = m.samplers.iter().find(|s| s.kind().name() == wanted).ok_or_else(|| {
            let known: Vec<&str> = m.samplers.iter().map(|s| s.kind().name()).collect();
            ApiError::Invalid(format!(
                "sampler: {} has no {wanted:?} sampler (it has {}; `vae fit-sampler` fits a gmm)",
                m.name,
                known.join(", ")
            ))
        })?;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(query.seed);
        let labels = m.model.conditioning().draw_labels(query.n, query.label);
        let codes = sampler
            .draw(query.n, labels.as_deref(), 1.0, &mut rng)
            .map_err(|e| ApiError::Invalid(e.to_string()))?;
        // A CVAE cycles through its classes without a label; the others refuse one.
        let condition = match m.model.conditioning() {
            Conditioning::Label { .. } => m
                .model
                .label_condition(query.n, query.label)
                .map_err(|e| ApiError::Invalid(e.to_string()))?,
            Conditioning::Unconditional => m.condition(query.n, query.label, None)?,
        };
        Ok(SampleResponse {
            codes: (0..codes.rows).map(|r| codes.row(r).to_vec()).collect(),
            images: m.decode(&codes, condition.as_ref()),
        })
    }

    /// The first `limit` test codes on the map, with their labels.
    pub fn latent_map(&self, query: MapQuery) -> Result<MapResponse, ApiError> {
        map_of(self.find(&query.model)?, query.limit)
    }

    /// One test image and its label.
    pub fn test_image(&self, query: TestImageQuery) -> Result<TestImageResponse, ApiError> {
        let m = self.find(&query.model)?;
        let (image, label) = m.test_image(query.index)?;
        Ok(TestImageResponse {
            index: query.index,
            label,
            image: to_pixels(&image.data),
        })
    }
}

/// The first `limit` test codes of `m` on its map, with their labels.
fn map_of(m: &ExploredModel, limit: usize) -> Result<MapResponse, ApiError> {
    if limit == 0 || limit > MAX_MAP_POINTS {
        return Err(ApiError::Invalid(format!("limit: 1 to {MAX_MAP_POINTS}, got {limit}")));
    }
    let points = &m.projection.points;
    let n = limit.min(points.rows);
    Ok(MapResponse {
        points: (0..n).map(|r| [points.row(r)[0], points.row(r)[1]]).collect(),
        labels: m.test.labels[..n].to_vec(),
        projection: if m.projection.pca.is_some() { "pca" } else { "identity" },
        explained: m.projection.pca_explained,
        bounds: m.bounds,
    })
}

#[cfg(test)]
mod tests;
