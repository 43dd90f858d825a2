//! `vae`: autoencoders and variational autoencoders on MNIST-like images.
//!
//! The crate holds all the logic of the `vae` command: a small neural-network [`engine`],
//! [`data`] sets and their loading, the [`model`]s, [`train`]ing with checkpoints, [`eval`]uation
//! and the pictures ([`image`]). The command-line crate only parses arguments and prints.

pub mod bench;
pub mod checkpoint;
pub mod classifier;
pub mod data;
pub mod demo;
pub mod engine;
pub mod error;
pub mod eval;
pub mod explore;
pub mod export;
pub mod files;
pub mod holes;
pub mod html;
pub mod image;
pub mod latent;
pub mod metrics;
pub mod model;
pub mod output;
pub mod pictures;
pub mod plot;
pub mod report;
pub mod rng;
pub mod run;
pub mod sampler;
pub mod score;
pub mod train;

pub use error::{Error, Result};
