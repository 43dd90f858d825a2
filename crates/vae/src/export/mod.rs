//! Taking a trained model elsewhere: [`pytorch`] writes it as a `torch.nn.Module` of
//! PyTorch's own layers, with its weights laid out the way those layers read them; [`onnx`]
//! writes its encoder and decoder as ONNX graphs of the same layers; [`html`] writes the
//! latent explorer as one page that runs the networks in the browser.

pub mod html;
pub mod onnx;
pub mod pytorch;

/// The shape of one item after the batch dimension, as the exported networks take it:
/// `[C, H, W]` for images, `[D]` for vectors.
fn item_dims(config: &crate::model::ModelConfig) -> Vec<usize> {
    let shape = config.image_shape();
    if shape.is_vector() {
        vec![shape.width]
    } else {
        vec![shape.channels, shape.height, shape.width]
    }
}
