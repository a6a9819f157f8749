//! Locating the external programs ratflow drives, with an actionable error when one is absent.

use crate::error::ToolMissing;
use std::path::{Path, PathBuf};

/// The full path of `tool` on PATH, or a [`ToolMissing`] error (exit code 3) that says which
/// Debian package provides it.
pub fn require(tool: &str, package: &str) -> anyhow::Result<PathBuf> {
    find(tool).ok_or_else(|| {
        anyhow::Error::new(ToolMissing {
            tool: tool.to_string(),
            hint: format!(
                "install it with `apt-get install {package}` (or run `make tools`, which installs every tool ratflow uses)"
            ),
        })
    })
}

/// The full path of `tool` on PATH, if any.
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
