//! Inputs and labels from NumPy `.npy` files (DESIGN section 5 "Golden vectors"), read with
//! the `ndarray-npy` crate.
//!
//! The whole file is read first and the array is *viewed* inside it, so a header that declares
//! more data than the file holds is refused ("missing N bytes") instead of being allocated.

use crate::error::input;
use anyhow::Result;
use ndarray::ArrayViewD;
use ndarray_npy::ViewNpyExt;
use ndarray_npy::npy::header::Header;
use std::path::Path;

/// A `.npy` array, its elements as read.
pub enum NpyArray {
    I8(Vec<i8>),
    /// float32 (float64 files are cast to float32 first, as DESIGN section 5 says).
    F32(Vec<f32>),
    /// Any integer dtype, widened (labels).
    Int(Vec<i64>),
}

/// A `.npy` file: its shape and elements in C order.
pub struct Npy {
    pub shape: Vec<usize>,
    pub data: NpyArray,
    /// The dtype as NumPy writes it (`<f4`, `|i1`), for messages.
    pub descr: String,
}

/// Bytes copied into an 8-byte-aligned buffer: `.npy` data starts at a multiple of 16 bytes
/// from the file start, so every element type can be viewed in place.
fn aligned(bytes: &[u8]) -> Vec<u64> {
    let mut buf = vec![0u64; bytes.len().div_ceil(8)];
    // SAFETY: `buf` holds at least `bytes.len()` bytes; u8 has no alignment requirement.
    let dst = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut u8, bytes.len()) };
    dst.copy_from_slice(bytes);
    buf
}

fn view<'a, T: ndarray_npy::ViewElement>(
    bytes: &'a [u8],
) -> std::result::Result<ArrayViewD<'a, T>, ndarray_npy::ViewNpyError> {
    ArrayViewD::<T>::view_npy(bytes)
}

/// Reads a `.npy` file; `what` names it in errors (`--inputs X.npy`).
pub fn read(path: &Path, what: &str) -> Result<Npy> {
    let raw = std::fs::read(path)
        .map_err(|e| input(format!("{what} {}: cannot read ({e})", path.display())))?;
    let at = |msg: String| input(format!("{what} {}: {msg}", path.display()));
    let header = Header::from_reader(&mut &raw[..])
        .map_err(|e| at(format!("not a valid .npy file ({e})")))?;
    let descr = header.type_descriptor.to_string();
    let buf = aligned(&raw);
    // SAFETY: `buf` holds `raw.len()` initialised bytes.
    let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr() as *const u8, raw.len()) };
    let shape = header.shape.clone();
    let bad = |e: ndarray_npy::ViewNpyError| at(format!("{e} (dtype {descr}, shape {shape:?})"));
    let wrong = |e: &ndarray_npy::ViewNpyError| {
        matches!(
            e,
            ndarray_npy::ViewNpyError::WrongDescriptor(_)
                | ndarray_npy::ViewNpyError::NonNativeEndian
        )
    };
    macro_rules! try_as {
        ($t:ty, $wrap:expr) => {
            match view::<$t>(bytes) {
                Ok(a) => {
                    return Ok(Npy {
                        shape,
                        data: $wrap(a.iter().copied().collect::<Vec<$t>>()),
                        descr,
                    });
                }
                Err(e) if wrong(&e) => {}
                Err(e) => return Err(bad(e)),
            }
        };
    }
    try_as!(i8, NpyArray::I8);
    try_as!(f32, NpyArray::F32);
    try_as!(f64, |v: Vec<f64>| NpyArray::F32(
        v.into_iter().map(|x| x as f32).collect()
    ));
    let widen = |v: Vec<i64>| NpyArray::Int(v);
    try_as!(i64, widen);
    try_as!(i32, |v: Vec<i32>| widen(
        v.into_iter().map(i64::from).collect()
    ));
    try_as!(i16, |v: Vec<i16>| widen(
        v.into_iter().map(i64::from).collect()
    ));
    try_as!(u8, |v: Vec<u8>| widen(
        v.into_iter().map(i64::from).collect()
    ));
    try_as!(u16, |v: Vec<u16>| widen(
        v.into_iter().map(i64::from).collect()
    ));
    try_as!(u32, |v: Vec<u32>| widen(
        v.into_iter().map(i64::from).collect()
    ));
    try_as!(u64, |v: Vec<u64>| widen(
        v.into_iter()
            .map(|x| i64::try_from(x).unwrap_or(i64::MAX))
            .collect()
    ));
    Err(at(format!(
        "dtype {descr} is not supported (int8 codes, float32/float64 values or integer labels)"
    )))
}

/// Model inputs from `--inputs X.npy`: shape `[N, ...]` with the trailing dimensions holding
/// exactly `len` elements; int8 arrays are codes, float arrays real values quantized with the
/// input's (S, Z) ([`crate::quant::quantize_real`]).
pub fn read_inputs(path: &Path, len: usize, scale: f64, zero_point: i8) -> Result<Vec<Vec<i8>>> {
    let npy = read(path, "--inputs")?;
    let at = |msg: String| input(format!("--inputs {}: {msg}", path.display()));
    let per: usize = npy.shape.iter().skip(1).product();
    if npy.shape.len() < 2 || per != len {
        return Err(at(format!(
            "shape {:?} does not hold [N, ...] inputs of {len} elements each (the model's input size)",
            npy.shape
        )));
    }
    if npy.shape[0] == 0 {
        return Err(at("holds no inputs (N = 0)".into()));
    }
    match npy.data {
        NpyArray::I8(v) => Ok(v.chunks_exact(len).map(<[i8]>::to_vec).collect()),
        NpyArray::F32(v) => {
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(at(format!("element {i} is not a finite number")));
            }
            Ok(v.chunks_exact(len)
                .map(|row| {
                    row.iter()
                        .map(|&r| crate::quant::quantize_real(r, scale, zero_point))
                        .collect()
                })
                .collect())
        }
        NpyArray::Int(_) => Err(at(format!(
            "dtype {} is not int8 codes or float32/float64 real values",
            npy.descr
        ))),
    }
}

/// Labels from `--labels Y.npy`: `count` non-negative integers below `classes`, any integer
/// dtype, shape `[N]` (or `[N, 1]`).
pub fn read_labels(path: &Path, count: usize, classes: usize) -> Result<Vec<usize>> {
    let npy = read(path, "--labels")?;
    let at = |msg: String| input(format!("--labels {}: {msg}", path.display()));
    let ok_shape = matches!(npy.shape[..], [n] | [n, 1] if n == count);
    if !ok_shape {
        return Err(at(format!(
            "shape {:?} does not match the {count} inputs (expected [{count}])",
            npy.shape
        )));
    }
    let NpyArray::Int(v) = npy.data else {
        return Err(at(format!("dtype {} is not an integer type", npy.descr)));
    };
    v.iter()
        .enumerate()
        .map(|(i, &l)| {
            if l < 0 || l as u64 >= classes as u64 {
                Err(at(format!(
                    "label {i} = {l} is outside 0..{classes} (the model's output size)"
                )))
            } else {
                Ok(l as usize)
            }
        })
        .collect()
}
