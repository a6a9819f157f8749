//! Tests of the generated RTL with the real tools: lint (Verilator, Icarus, yosys), whole
//! designs against golden vectors (Verilator, random stalls, cycle counts), and planted bugs.
//! The library's own unit tests (every module against an exact C++ reference) are
//! `rtl/lib/test.sh`. They need `verilator`, `yosys` and `iverilog` on PATH and fail (never skip)
//! without them; `make tools` installs them.

mod acc;
mod cli;
mod common;
mod lint;
mod network;
mod planted_bug;
mod synth;
