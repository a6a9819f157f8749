//! TFLite (`.tflite`, LiteRT) flatbuffers: the lowest layer of the TFLite importer.
//!
//! [`read`] / [`read_file`] turn a file into a validated [`TfliteGraph`] of plain structs
//! (tensors with shapes, dtypes, quantization and constant data; operators with resolved
//! codes and typed options). It depends on nothing else in ratflow: a later layer maps the
//! graph onto the int-model and refuses what it cannot represent.
//!
//! `schema_generated.rs` was generated once from `schema.fbs` (TFLite's schema, Apache-2.0,
//! beside this file) and is committed; `README.md` here gives the command, the flatc version
//! and the schema's source commit. Do not edit it by hand: regenerate it.

// Generated code: clippy's style lints (extra_unused_lifetimes on every enum's Verifiable impl)
// are flatc's business, not ours; rustfmt must not touch it so regeneration diffs stay exact.
#[allow(clippy::all)]
#[rustfmt::skip]
mod schema_generated;

mod reader;

pub use reader::*;
