//! MNIST in the standard IDX format, gzipped or raw.
//!
//! The loader accepts exactly the files of the original distribution (so `--data` can point at
//! full MNIST unchanged) and checks them strictly: a truncated download or a swapped file gives
//! an error naming the file and what is wrong, never a silently shorter dataset.

pub mod npy;

use crate::error::input;
use anyhow::{Context, Result};
use flate2::read::GzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// A labelled set of 8-bit images, row-major, `rows * cols` bytes each.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub rows: usize,
    pub cols: usize,
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn pixels_per_image(&self) -> usize {
        self.rows * self.cols
    }

    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.pixels_per_image();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// The model's int8 input for image `i`: `x = p - 128` (S = 1/255, Z = -128), exact.
    pub fn input_i8(&self, i: usize) -> Vec<i8> {
        self.image(i).iter().map(|&p| pixel_to_i8(p)).collect()
    }

    /// The first `n` images (all of them when `n` exceeds the count).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * self.pixels_per_image());
    }
}

/// Int8 model inputs, with labels when the source has them: what `eval`, `vectors` and `sim`
/// run, whatever the source (MNIST IDX, `.npy`, random codes).
#[derive(Clone, Debug, Default)]
pub struct InputSet {
    pub codes: Vec<Vec<i8>>,
    pub labels: Option<Vec<usize>>,
    /// Where the inputs came from, for messages and reports.
    pub source: String,
}

impl InputSet {
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }

    /// Images as inputs of a model whose input has (S, Z) = (`scale`, `zero_point`): a pixel's
    /// real value is `float32(p) / 255` (DESIGN section 5), quantized as TFLite's QUANTIZE.
    pub fn from_dataset(d: &Dataset, scale: f64, zero_point: i8, source: &str) -> InputSet {
        let table: Vec<i8> = (0..=255u8)
            .map(|p| crate::quant::quantize_real(p as f32 / 255.0, scale, zero_point))
            .collect();
        InputSet {
            codes: (0..d.len())
                .map(|i| d.image(i).iter().map(|&p| table[p as usize]).collect())
                .collect(),
            labels: Some(d.labels.iter().map(|&l| l as usize).collect()),
            source: source.to_string(),
        }
    }

    /// `count` inputs of `len` codes: the given corner patterns first, then uniform random codes
    /// from `seed`. Unlabelled.
    pub fn random(seed: u64, count: usize, len: usize, corners: Vec<Vec<i8>>) -> InputSet {
        let mut rng = crate::rng::Rng::new(seed);
        let mut codes: Vec<Vec<i8>> = corners.into_iter().take(count).collect();
        while codes.len() < count {
            codes.push((0..len).map(|_| rng.i8()).collect());
        }
        InputSet {
            codes,
            labels: None,
            source: format!("random inputs, seed {seed}"),
        }
    }

    /// The first `n` inputs.
    pub fn truncate(&mut self, n: usize) {
        self.codes.truncate(n);
        if let Some(l) = &mut self.labels {
            l.truncate(n);
        }
    }
}

/// The input quantization of DESIGN section 1.
#[inline]
pub fn pixel_to_i8(p: u8) -> i8 {
    (p as i16 - 128) as i8
}

/// Which half of MNIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    pub fn parse(s: &str) -> Option<Split> {
        match s {
            "train" => Some(Split::Train),
            "t10k" | "test" => Some(Split::Test),
            _ => None,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.prefix()
    }
}

/// The bundled MNIST subset shipped in the repository's `data/` folder.
pub fn bundled_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Finds `{prefix}-{kind}-idx{n}-ubyte` in `dir`, gzipped or raw, also under the dotted name
/// some mirrors use (`train-images.idx3-ubyte`).
fn find_file(dir: &Path, stem: &str) -> Result<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for name in [stem.to_string(), dotted] {
        for candidate in [dir.join(format!("{name}.gz")), dir.join(&name)] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(input(format!(
        "{}: missing {stem}[.gz] (expected the standard MNIST file names)",
        dir.display()
    )))
}

/// Reads a file, gunzipping when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| input(format!("{}: corrupt gzip data ({e})", path.display())))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses an IDX3 image file: magic, count, rows, cols, then the pixels.
pub fn parse_images(bytes: &[u8], what: &str) -> Result<(usize, usize, usize, Vec<u8>)> {
    if bytes.len() < 16 {
        return Err(input(format!(
            "{what}: {} bytes is too short for an IDX image header (16 bytes)",
            bytes.len()
        )));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(input(format!(
            "{what}: wrong IDX magic 0x{magic:08x}, expected 0x{IMAGES_MAGIC:08x} (ubyte images, 3 dimensions)"
        )));
    }
    let (n, rows, cols) = (
        be_u32(bytes, 4) as usize,
        be_u32(bytes, 8) as usize,
        be_u32(bytes, 12) as usize,
    );
    if rows == 0 || cols == 0 {
        return Err(input(format!(
            "{what}: image dimensions {rows}x{cols} are empty"
        )));
    }
    let expected = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .and_then(|v| v.checked_add(16))
        .ok_or_else(|| input(format!("{what}: header dimensions overflow")))?;
    if bytes.len() != expected {
        return Err(input(format!(
            "{what}: header says {n} images of {rows}x{cols} ({expected} bytes) but the file has {} bytes{}",
            bytes.len(),
            if bytes.len() < expected {
                " (truncated)"
            } else {
                ""
            }
        )));
    }
    Ok((n, rows, cols, bytes[16..].to_vec()))
}

/// Parses an IDX1 label file; labels must be digits 0..=9.
pub fn parse_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if bytes.len() < 8 {
        return Err(input(format!(
            "{what}: {} bytes is too short for an IDX label header (8 bytes)",
            bytes.len()
        )));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(input(format!(
            "{what}: wrong IDX magic 0x{magic:08x}, expected 0x{LABELS_MAGIC:08x} (ubyte labels, 1 dimension)"
        )));
    }
    let n = be_u32(bytes, 4) as usize;
    if bytes.len() != 8 + n {
        return Err(input(format!(
            "{what}: header says {n} labels but the file holds {}{}",
            bytes.len() - 8,
            if bytes.len() < 8 + n {
                " (truncated)"
            } else {
                ""
            }
        )));
    }
    let labels = bytes[8..].to_vec();
    if let Some(pos) = labels.iter().position(|&l| l > 9) {
        return Err(input(format!(
            "{what}: label {pos} is {}, not a digit 0..=9",
            labels[pos]
        )));
    }
    Ok(labels)
}

/// Loads one split from a folder holding the standard MNIST file names.
pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(input(format!(
            "--data {}: no such folder (expected a folder with the MNIST IDX files)",
            dir.display()
        )));
    }
    let img_path = find_file(dir, &format!("{}-images-idx3-ubyte", split.prefix()))?;
    let lbl_path = find_file(dir, &format!("{}-labels-idx1-ubyte", split.prefix()))?;
    let (n, rows, cols, pixels) =
        parse_images(&read_maybe_gz(&img_path)?, &img_path.display().to_string())?;
    let labels = parse_labels(&read_maybe_gz(&lbl_path)?, &lbl_path.display().to_string())?;
    if labels.len() != n {
        return Err(input(format!(
            "{} has {n} images but {} has {} labels",
            img_path.display(),
            lbl_path.display(),
            labels.len()
        )));
    }
    if n == 0 {
        return Err(input(format!("{}: no images", img_path.display())));
    }
    Ok(Dataset {
        rows,
        cols,
        pixels,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut v = IMAGES_MAGIC.to_be_bytes().to_vec();
        for d in [n, rows, cols] {
            v.extend(d.to_be_bytes());
        }
        v.extend((0..n * rows * cols).map(|i| (i % 256) as u8));
        v
    }

    fn idx_labels(n: u32) -> Vec<u8> {
        let mut v = LABELS_MAGIC.to_be_bytes().to_vec();
        v.extend(n.to_be_bytes());
        v.extend((0..n).map(|i| (i % 10) as u8));
        v
    }

    #[test]
    fn parses_well_formed() {
        let (n, r, c, px) = parse_images(&idx_images(3, 2, 4), "x").unwrap();
        assert_eq!((n, r, c, px.len()), (3, 2, 4, 24));
        assert_eq!(parse_labels(&idx_labels(5), "y").unwrap().len(), 5);
    }

    #[test]
    fn rejects_truncated_and_wrong_magic() {
        let mut img = idx_images(3, 2, 4);
        img.pop();
        let e = parse_images(&img, "x").unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let e = parse_images(&idx_labels(20), "x").unwrap_err().to_string();
        assert!(e.contains("wrong IDX magic"), "{e}");
        let e = parse_labels(&idx_images(1, 1, 1), "y")
            .unwrap_err()
            .to_string();
        assert!(e.contains("wrong IDX magic"), "{e}");
        let e = parse_images(&[0, 0, 8], "x").unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let mut lbl = idx_labels(4);
        lbl[9] = 12;
        let e = parse_labels(&lbl, "y").unwrap_err().to_string();
        assert!(e.contains("not a digit"), "{e}");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = parse_images(&bytes, "r");
            let _ = parse_labels(&bytes, "r");
        }
    }

    #[test]
    fn bundled_data_loads() {
        let train = load(&bundled_dir(), Split::Train).unwrap();
        let test = load(&bundled_dir(), Split::Test).unwrap();
        assert_eq!((train.len(), test.len()), (8000, 2000));
        assert_eq!((train.rows, train.cols), (28, 28));
        let mut hist = [0usize; 10];
        for &l in &test.labels {
            hist[l as usize] += 1;
        }
        assert_eq!(hist, [209, 230, 205, 186, 181, 190, 209, 210, 183, 197]);
        assert_eq!(pixel_to_i8(0), -128);
        assert_eq!(pixel_to_i8(255), 127);
    }
}
