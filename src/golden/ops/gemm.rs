//! The int8 matrix product under every conv2d and dense: `acc[p][o] = bias'[o] +
//! sum_k u[p][k] * w[o][k]` with unsigned codes `u = x + 128` and signed weights, exact.
//!
//! Why unsigned codes: `sum (x - Z_x) w = sum (x + 128) w - (Z_x + 128) sum w`, so the zero point
//! folds into the bias (`bias' = b - (Z_x + 128) sum_k w[o][k]`) and the products are u8 x i8,
//! which AVX-512 VNNI's `vpdpbusd` multiplies 64 at a time and sums by fours into i32. Padding
//! taps hold the code of `Z_x` (`Z_x + 128`), whose contribution the folded bias cancels: the
//! same as skipping them. Every sum is taken modulo 2^32 (wrapping); the model's validated
//! accumulator bound puts the true result inside i32, so the wrapped result is exact however
//! large the partial sums get.
//!
//! Two paths give identical integers: the VNNI kernel (register tiles of 4 pixels x 64
//! channels) where the CPU has it, and a portable loop elsewhere.

/// Weights `[O][K]` packed for the kernels: K padded to a multiple of 4 with zeros, and O in
/// blocks of 16 channels laid out `[O/16][K/4][16][4]` (one 64-byte vector per block and
/// group of four k).
pub struct Packed {
    /// Output channels.
    pub o: usize,
    /// Inner length padded to a multiple of 4.
    pub kp: usize,
    blocks: usize,
    vnni: Vec<i8>,
    /// `[O][kp]`, for the portable path.
    rows: Vec<i8>,
    /// `bias - (Z_x + 128) * sum_k w[o][k]`, wrapping.
    bias: Vec<i32>,
}

impl Packed {
    /// Packs row-major `weight` (`[O][k]`) with its bias for input zero point `zx`.
    pub fn new(weight: &[i8], o: usize, k: usize, bias: &[i32], zx: i8) -> Packed {
        let kp = k.div_ceil(4) * 4;
        let blocks = o.div_ceil(16);
        let mut rows = vec![0i8; o * kp];
        for c in 0..o {
            rows[c * kp..c * kp + k].copy_from_slice(&weight[c * k..(c + 1) * k]);
        }
        let mut vnni = vec![0i8; blocks * kp * 16];
        for c in 0..o {
            let (b, lane) = (c / 16, c % 16);
            for kk in 0..k {
                vnni[((b * (kp / 4) + kk / 4) * 16 + lane) * 4 + kk % 4] = weight[c * k + kk];
            }
        }
        let shift = zx as i64 + 128;
        let bias = (0..o)
            .map(|c| {
                let sum: i64 = weight[c * k..(c + 1) * k].iter().map(|&w| w as i64).sum();
                (bias[c] as i64 - shift * sum) as i32
            })
            .collect();
        Packed {
            o,
            kp,
            blocks,
            vnni,
            rows,
            bias,
        }
    }
}

/// The unsigned code of an int8 value: `x + 128`.
#[inline(always)]
pub fn code(x: i8) -> u8 {
    (x as u8) ^ 0x80
}

/// Where the codes of pixel `p`, group of four `g` lie in the code buffer:
/// `pixel[p] + group[g]`. Rows of a plain matrix are `pixel[p] = p * kp`, `group[g] = 4 g`;
/// a convolution reads its (padded) input in place, with `pixel` the window origins and `group`
/// the taps' offsets from them (implicit im2col: no window is copied).
#[derive(Clone, Debug)]
pub struct Offsets {
    pub pixel: Vec<usize>,
    pub group: Vec<usize>,
}

impl Offsets {
    /// `pixels` consecutive rows of `kp` codes.
    pub fn rows(pixels: usize, kp: usize) -> Offsets {
        Offsets {
            pixel: (0..pixels).map(|p| p * kp).collect(),
            group: (0..kp / 4).map(|g| 4 * g).collect(),
        }
    }

    /// The codes buffer must hold this many bytes.
    pub fn span(&self) -> usize {
        match (self.pixel.iter().max(), self.group.iter().max()) {
            (Some(p), Some(g)) => p + g + 4,
            _ => 0,
        }
    }
}

/// `acc[p * O + o] = bias'[o] + sum_g sum_j u[pixel[p] + group[g] + j] * w[o][4 g + j]`.
pub fn gemm(u: &[u8], at: &Offsets, w: &Packed, acc: &mut [i32]) {
    // Checked once here so that the kernels may read without bounds checks.
    assert!(
        u.len() >= at.span(),
        "codes buffer shorter than its offsets"
    );
    assert!(at.group.len() == w.kp / 4, "one offset per group of four");
    assert!(
        acc.len() >= at.pixel.len() * w.o,
        "accumulator buffer too short"
    );
    #[cfg(target_arch = "x86_64")]
    {
        if crate::cpu::vnni() && !PORTABLE.load(std::sync::atomic::Ordering::Relaxed) {
            // SAFETY: the CPU has the features `gemm_vnni` is compiled for, and the asserts
            // above keep every read and write inside the slices.
            unsafe { gemm_vnni(u, at, w, acc) };
            return;
        }
    }
    gemm_portable(u, at, w, acc);
}

/// Forces the portable path (tests compare the two; both give the same integers).
static PORTABLE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Runs every later product on the portable path (`true`) or the fastest one (`false`).
#[cfg(test)]
pub fn force_portable(on: bool) {
    PORTABLE.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn gemm_portable(u: &[u8], at: &Offsets, w: &Packed, acc: &mut [i32]) {
    for (p, &base) in at.pixel.iter().enumerate() {
        for (c, a) in acc[p * w.o..(p + 1) * w.o].iter_mut().enumerate() {
            let row = &w.rows[c * w.kp..(c + 1) * w.kp];
            let mut s = 0i32;
            for (g, &off) in at.group.iter().enumerate() {
                for j in 0..4 {
                    let x = u[base + off + j] as i32;
                    s = s.wrapping_add(x * row[4 * g + j] as i32);
                }
            }
            *a = s.wrapping_add(w.bias[c]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn gemm_vnni(u: &[u8], at: &Offsets, w: &Packed, acc: &mut [i32]) {
    let pixels = at.pixel.len();
    let mut p = 0;
    while p + 4 <= pixels {
        // SAFETY: as in `gemm`.
        unsafe { row_block::<4>(u, at, p, w, acc) };
        p += 4;
    }
    while p < pixels {
        // SAFETY: as in `gemm`.
        unsafe { row_block::<1>(u, at, p, w, acc) };
        p += 1;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn row_block<const PB: usize>(
    u: &[u8],
    at: &Offsets,
    p0: usize,
    w: &Packed,
    acc: &mut [i32],
) {
    let mut b = 0;
    while b + 4 <= w.blocks {
        // SAFETY: as in `gemm`.
        unsafe { tile::<PB, 4>(u, at, p0, w, acc, b) };
        b += 4;
    }
    while b < w.blocks {
        // SAFETY: as in `gemm`.
        unsafe { tile::<PB, 1>(u, at, p0, w, acc, b) };
        b += 1;
    }
}

/// `PB` pixels x `NB` blocks of 16 channels, accumulated in `PB * NB` registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile<const PB: usize, const NB: usize>(
    u: &[u8],
    at: &Offsets,
    p0: usize,
    w: &Packed,
    acc: &mut [i32],
    b0: usize,
) {
    use std::arch::x86_64::*;
    let k4 = w.kp / 4;
    let mut c = [[_mm512_setzero_si512(); NB]; PB];
    let wp = w.vnni.as_ptr();
    let up = u.as_ptr();
    let base: [usize; PB] = std::array::from_fn(|i| at.pixel[p0 + i]);
    for (g, &off) in at.group.iter().enumerate() {
        let mut wv = [_mm512_setzero_si512(); NB];
        for (j, v) in wv.iter_mut().enumerate() {
            // SAFETY: block b0 + j < blocks, group g < k4: inside `vnni`.
            *v = unsafe { _mm512_loadu_si512(wp.add(((b0 + j) * k4 + g) * 64) as *const _) };
        }
        for (i, ci) in c.iter_mut().enumerate() {
            // SAFETY: pixel[p] + group[g] + 4 <= span <= u.len() (asserted in `gemm`).
            let x = unsafe { (up.add(base[i] + off) as *const i32).read_unaligned() };
            let xb = _mm512_set1_epi32(x);
            for (cij, wj) in ci.iter_mut().zip(&wv) {
                *cij = _mm512_dpbusd_epi32(*cij, xb, *wj);
            }
        }
    }
    for (i, ci) in c.iter().enumerate() {
        for (j, cij) in ci.iter().enumerate() {
            let o0 = (b0 + j) * 16;
            let n = (w.o - o0).min(16);
            let mask: __mmask16 = if n == 16 { 0xffff } else { (1u16 << n) - 1 };
            // SAFETY: the masked lanes address channels o0..o0 + n < o of pixel p0 + i.
            unsafe {
                let bias = _mm512_maskz_loadu_epi32(mask, w.bias.as_ptr().add(o0));
                let r = _mm512_add_epi32(*cij, bias);
                _mm512_mask_storeu_epi32(acc.as_mut_ptr().add((p0 + i) * w.o + o0), mask, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Both paths equal a plain i64 sum of `(x - Z) * w + b`, for every remainder of pixels,
    /// channels and K, and for weights at the int8 extremes.
    #[test]
    fn gemm_is_exact_on_both_paths() {
        let mut rng = Rng::new(3);
        for (pixels, o, k) in [
            (1, 1, 1),
            (5, 17, 3),
            (9, 64, 27),
            (4, 33, 144),
            (7, 10, 640),
        ] {
            let zx = rng.i8();
            let x: Vec<i8> = (0..pixels * k).map(|_| rng.i8()).collect();
            let w: Vec<i8> = (0..o * k)
                .map(|i| if i % 7 == 0 { -128 } else { rng.i8() })
                .collect();
            let bias: Vec<i32> = (0..o)
                .map(|_| rng.range(-100_000, 100_000) as i32)
                .collect();
            let packed = Packed::new(&w, o, k, &bias, zx);
            let mut u = vec![0u8; pixels * packed.kp];
            for p in 0..pixels {
                for kk in 0..k {
                    u[p * packed.kp + kk] = code(x[p * k + kk]);
                }
            }
            let want: Vec<i32> = (0..pixels * o)
                .map(|i| {
                    let (p, c) = (i / o, i % o);
                    let s: i64 = (0..k)
                        .map(|kk| (x[p * k + kk] as i64 - zx as i64) * w[c * k + kk] as i64)
                        .sum();
                    (s + bias[c] as i64) as i32
                })
                .collect();
            let at = Offsets::rows(pixels, packed.kp);
            let mut got = vec![0; pixels * o];
            gemm(&u, &at, &packed, &mut got);
            assert_eq!(got, want, "{pixels} x {o} x {k}");
            let mut portable = vec![0; pixels * o];
            gemm_portable(&u, &at, &packed, &mut portable);
            assert_eq!(portable, want, "portable {pixels} x {o} x {k}");
        }
    }
}
