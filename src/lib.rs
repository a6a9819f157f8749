//! ratflow: from a trained MLP to verified integer RTL with a narrow (k-bit) rescaler.
//!
//! Data flows one way through the modules: `data` (MNIST IDX) and `quant` (the integer
//! semantics) feed `model` (the validated int-model format), which feeds `golden` (the bit-exact
//! reference). Later stages use earlier ones, never the reverse.

pub mod cli;
mod cpu;
pub mod data;
pub mod error;
pub mod flow;
pub mod fsio;
pub mod golden;
pub mod import;
pub mod model;
pub mod quant;
pub mod report;
pub mod rng;
pub mod rtl;
pub mod sim;
pub mod stats;
pub mod synth;
pub mod tools;
pub mod train;

/// The version stamped into generated files and provenance.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
