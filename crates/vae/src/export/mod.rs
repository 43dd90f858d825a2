//! Taking a trained model elsewhere: [`pytorch`] writes it as a `torch.nn.Module` of
//! PyTorch's own layers, with its weights laid out the way those layers read them; [`onnx`]
//! writes its encoder and decoder as ONNX graphs of the same layers; [`html`] writes the
//! latent explorer as one page that runs the networks in the browser.

pub mod html;
pub mod onnx;
pub mod pytorch;
