//! Error classes that decide the process exit code.
//!
//! Errors travel as `anyhow::Error` with context; the binary inspects the chain for one of
//! these markers. Exit codes: 0 success, 1 a check failed (e.g. co-simulation mismatch),
//! 2 bad usage or bad input (a malformed file, an out-of-range option), 3 a required external
//! tool is missing.

use std::fmt;

/// The user's input is at fault: the message names the file and field.
#[derive(Debug)]
pub struct InputError(pub String);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// An external program (verilator, yosys, ...) is not installed.
#[derive(Debug)]
pub struct ToolMissing {
    pub tool: String,
    pub hint: String,
}

impl fmt::Display for ToolMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` not found on PATH: {}", self.tool, self.hint)
    }
}

impl std::error::Error for ToolMissing {}

/// Builds an `anyhow::Error` marked as an input error.
pub fn input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(InputError(msg.into()))
}

/// Early-returns an input error, formatted like `anyhow::bail!`.
#[macro_export]
macro_rules! bail_input {
    ($($arg:tt)*) => {
        return Err($crate::error::input(format!($($arg)*)))
    };
}

/// The exit code the binary should use for this error.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if cause.is::<InputError>() {
            return 2;
        }
        if cause.is::<ToolMissing>() {
            return 3;
        }
    }
    1
}
