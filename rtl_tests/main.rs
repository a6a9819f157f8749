//! Tests of the generated RTL with the real tools: lint (Verilator, Icarus, yosys),
//! requantizer units against the integer semantics, whole networks against golden vectors, and
//! planted bugs. They need `verilator`, `yosys` and `iverilog` on PATH and fail (never skip)
//! without them; `make tools` installs them.

mod acc;
mod cli;
mod common;
mod lint;
mod network;
mod planted_bug;
mod requant;
