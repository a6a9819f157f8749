//! TFLite (`.tflite`, LiteRT) flatbuffers: the lowest layer of the TFLite importer.
//!
//! [`read`] / [`read_file`] turn a file into a validated [`TfliteGraph`] of plain structs
//! (tensors with shapes, dtypes, quantization and constant data; operators with resolved
//! codes and typed options). It depends on nothing else in ratflow. The second layer,
//! [`import_graph`] / [`import_bytes`] / [`import_file`] (`to_model.rs`), maps the graph onto
//! an int-model version 2 with TFLite's integer semantics and refuses what it cannot
//! represent; `near_ties.rs` counts where its dense rescale and LiteRT's float64
//! FULLY_CONNECTED differ; `writer.rs` writes a graph back (tests build
//! refused files from real ones with it).
//!
//! `schema_generated.rs` was generated once from `schema.fbs` (TFLite's schema, Apache-2.0,
//! beside this file) and is committed; `README.md` here gives the command, the flatc version
//! and the schema's source commit. Do not edit it by hand: regenerate it.

// Generated code: clippy's style lints (extra_unused_lifetimes on every enum's Verifiable impl)
// are flatc's business, not ours; rustfmt must not touch it so regeneration diffs stay exact.
#[allow(clippy::all)]
#[rustfmt::skip]
mod schema_generated;

pub mod near_ties;
mod reader;
mod to_model;
mod writer;

pub use reader::*;
pub use to_model::*;
pub use writer::{WriteExtras, write, write_with};
