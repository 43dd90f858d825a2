//! The requests and answers of the explorer's JSON API, and the checks every request passes
//! before it reaches a model. Field names are the JSON keys; the contract the page relies on
//! is written out in `README.md` (section "Latent explorer").

use serde::{Deserialize, Serialize};

/// Images are sent as height·width·channels integers 0..255, row-major, a pixel's channels
/// side by side (784 for MNIST): a quarter of the bytes of floats.
pub type Pixels = Vec<u8>;

/// Most rows one decode or sample request may ask for.
pub const MAX_ROWS: usize = 256;
/// Most frames between the ends of an interpolation.
pub const MAX_STEPS: usize = 64;
/// Most test points the latent map returns.
pub const MAX_MAP_POINTS: usize = 10_000;

/// Why a request was refused: the HTTP status class and a one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the body or query could not be read (malformed JSON, a wrong type).
    Malformed(String),
    /// 404: no such model or test image.
    NotFound(String),
    /// 422: well-formed, but a value is out of range (wrong length, NaN, too many rows).
    Invalid(String),
}

impl ApiError {
    /// The HTTP status the server answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Malformed(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::Invalid(_) => 422,
        }
    }

    /// The body of the refusal: `{"error": MESSAGE}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message() })
    }

    /// The message, without the class.
    pub fn message(&self) -> &str {
        match self {
            ApiError::Malformed(m) | ApiError::NotFound(m) | ApiError::Invalid(m) => m,
        }
    }
}

/// One model as the page lists it.
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    /// The images' size: what every image sent and received holds.
    pub height: usize,
    pub width: usize,
    /// 1 grey, 3 RGB (the drawing pad draws for grey models only).
    pub channels: usize,
    /// `ae`, `vae` or `cvae`.
    pub kind: &'static str,
    /// `mlp` or `conv`.
    pub arch: &'static str,
    pub latent: usize,
    /// CVAE: its number of classes; 0 for the others.
    pub classes: usize,
    pub class_names: Vec<String>,
    pub dataset: String,
    pub test_images: usize,
    pub epochs: usize,
    /// What `/api/sample` can draw from: `prior`, and `gmm` when the run has a fitted mixture.
    pub samplers: Vec<&'static str>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelsResponse {
    pub models: Vec<ModelInfo>,
}

/// `POST /api/decode`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeRequest {
    pub model: String,
    /// One code per row, each of the model's latent size.
    pub z: Vec<Vec<f32>>,
    /// CVAE: the class of every row.
    #[serde(default)]
    pub label: Option<u8>,
    /// CVAE: the class of each row, instead of `label`.
    #[serde(default)]
    pub labels: Option<Vec<u8>>,
    /// How the images come back: `pixels` (default) or `png`.
    #[serde(default)]
    pub format: ImageFormat,
}

/// How decoded images are sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// height·width·channels integers 0..255 per image, row-major: what a canvas draws.
    #[default]
    Pixels,
    /// A base64 PNG per image, for an `<img>` or a file.
    Png,
}

/// One decoded image, in the format asked for.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Image {
    Pixels(Pixels),
    /// Base64 of the PNG file.
    Png(String),
}

#[derive(Clone, Debug, Serialize)]
pub struct ImagesResponse {
    pub images: Vec<Image>,
}

/// `POST /api/encode`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncodeRequest {
    pub model: String,
    /// The pixels in [0, 1], row-major.
    pub image: Vec<f32>,
    #[serde(default)]
    pub label: Option<u8>,
}

#[derive(Clone, Debug, Serialize)]
pub struct EncodeResponse {
    /// The posterior mean (the code of an autoencoder).
    pub mu: Vec<f32>,
    /// The posterior standard deviation; `None` for an autoencoder.
    pub sigma: Option<Vec<f32>>,
    /// Decoded from `mu`.
    pub reconstruction: Pixels,
    /// Where `mu` falls on the model's latent map.
    pub map_point: [f32; 2],
}

/// An end of an interpolation: a test image (`index`, its own label), or pixels sent by the
/// page (`image`, a drawing, with `label` for a cvae).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct End {
    #[serde(default)]
    pub index: Option<usize>,
    #[serde(default)]
    pub image: Option<Vec<f32>>,
    #[serde(default)]
    pub label: Option<u8>,
}

/// `POST /api/interpolate`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterpolateRequest {
    pub model: String,
    pub from: End,
    pub to: End,
    #[serde(default = "default_steps")]
    pub steps: usize,
    #[serde(default)]
    pub slerp: bool,
}

fn default_steps() -> usize {
    10
}

#[derive(Clone, Debug, Serialize)]
pub struct InterpolateResponse {
    pub codes: Vec<Vec<f32>>,
    /// `steps + 1` frames, both ends included.
    pub images: Vec<Pixels>,
    pub from_image: Pixels,
    pub to_image: Pixels,
}

/// `GET /api/sample?model=..&n=..&seed=..&label=..`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleQuery {
    pub model: String,
    #[serde(default = "default_samples")]
    pub n: usize,
    #[serde(default)]
    pub seed: u64,
    #[serde(default)]
    pub label: Option<u8>,
    /// `prior` (the default) or `gmm`.
    #[serde(default)]
    pub sampler: Option<String>,
}

fn default_samples() -> usize {
    16
}

#[derive(Clone, Debug, Serialize)]
pub struct SampleResponse {
    pub codes: Vec<Vec<f32>>,
    pub images: Vec<Pixels>,
}

/// `GET /api/latent-map?model=..&limit=..`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapQuery {
    pub model: String,
    #[serde(default = "default_map_points")]
    pub limit: usize,
}

fn default_map_points() -> usize {
    2_000
}

/// A box around the map's points: `[min, max]` per axis.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Bounds {
    pub x: [f32; 2],
    pub y: [f32; 2],
}

#[derive(Clone, Debug, Serialize)]
pub struct MapResponse {
    pub points: Vec<[f32; 2]>,
    pub labels: Vec<u8>,
    /// `identity` for 2-D codes, else `pca`.
    pub projection: &'static str,
    pub explained: Option<f64>,
    /// Holds about 99% of all the test points, padded by a tenth.
    pub bounds: Bounds,
}

/// `GET /api/test-image?model=..&index=..`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestImageQuery {
    pub model: String,
    pub index: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct TestImageResponse {
    pub index: usize,
    pub label: u8,
    pub image: Pixels,
}

/// Reads a JSON body into `T`, naming what is wrong on failure.
pub fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Malformed(format!("request body: {e}")))
}

/// Reads a query string (`a=1&b=2`) into `T`.
pub fn parse_query<T: for<'de> Deserialize<'de>>(query: &str) -> Result<T, ApiError> {
    serde_urlencoded::from_str(query).map_err(|e| ApiError::Malformed(format!("query: {e}")))
}

/// Checks that `values` holds `expected` finite numbers, naming `field` when not.
pub fn check_vector(field: &str, values: &[f32], expected: usize) -> Result<(), ApiError> {
    if values.len() != expected {
        return Err(ApiError::Invalid(format!(
            "{field}: expected {expected} numbers, got {}",
            values.len()
        )));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ApiError::Invalid(format!("{field}[{i}]: not a finite number")));
    }
    Ok(())
}

/// Checks an image's pixels: the model's pixel count, each in [0, 1].
pub fn check_image(field: &str, image: &[f32], pixels: usize) -> Result<(), ApiError> {
    check_vector(field, image, pixels)?;
    if let Some(i) = image.iter().position(|v| !(0.0..=1.0).contains(v)) {
        return Err(ApiError::Invalid(format!(
            "{field}[{i}]: pixels must lie in [0, 1], got {}",
            image[i]
        )));
    }
    Ok(())
}

/// Pixels in [0, 1] as bytes 0..255.
pub fn to_pixels(values: &[f32]) -> Pixels {
    values
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect()
}
