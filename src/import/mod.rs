//! Importers: read model files written by other tools into plain, validated Rust data.
//!
//! Each importer's lowest layer depends on nothing else in ratflow (not on the int-model), so a
//! file is fully checked before any later stage maps it onto ratflow's own formats.

pub mod tflite;
