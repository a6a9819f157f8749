//! Output files appear whole or not at all.
//!
//! Every file ratflow writes goes through [`AtomicFile`]: bytes go to a hidden temporary in the
//! destination folder and are renamed over the target only once complete, so a failure (bad
//! input found halfway, a full disk, Ctrl-C) never leaves a truncated model, vector file or
//! report behind for a later stage to trust.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl AtomicFile {
    pub fn create(target: impl AsRef<Path>) -> Result<Self> {
        let target = target.as_ref().to_path_buf();
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
        let name = target
            .file_name()
            .with_context(|| format!("{} is not a file path", target.display()))?
            .to_string_lossy()
            .into_owned();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file =
            File::create(&temp).with_context(|| format!("cannot create {}", temp.display()))?;
        Ok(AtomicFile {
            target,
            temp,
            writer: Some(BufWriter::new(file)),
        })
    }

    /// Flushes, syncs and renames the temporary over the target.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("writer present until commit");
        let file = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", self.target.display()))?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", self.target.display()))?;
        fs::rename(&self.temp, &self.target)
            .with_context(|| format!("cannot move output into {}", self.target.display()))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes a whole file atomically.
pub fn write_atomic(target: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(target.as_ref())?;
    f.write_all(bytes)
        .with_context(|| format!("cannot write {}", target.as_ref().display()))?;
    f.commit()
}

/// SHA-256 of some bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `v` as pretty JSON with a final newline, atomically (the flow's stage artifacts).
pub fn write_json<T: serde::Serialize>(path: &Path, v: &T) -> Result<()> {
    write_atomic(path, (serde_json::to_string_pretty(v)? + "\n").as_bytes())
}

/// Reads a JSON artifact; errors name the file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("reading {}", path.display()))
}
