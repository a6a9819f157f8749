//! The inner product every accumulating kernel uses, exact in i32.
//!
//! Written as independent lanes so LLVM emits packed multiply-adds (`pmaddwd`, and `vpdpwssd`
//! where AVX-512 VNNI exists); compiled twice, for the baseline target and for AVX2 + AVX-512,
//! and picked at run time. Products are at most 255 * 128 and partial sums stay inside the
//! accumulator bound the model proved, so no lane can wrap.

/// `sum x[i] * w[i]`.
#[inline]
pub fn dot(x: &[i16], w: &[i16]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    {
        if fast() {
            // SAFETY: the CPU supports the features `dot_avx512` is compiled for.
            return unsafe { dot_avx512(x, w) };
        }
    }
    dot_lanes(x, w)
}

/// Four dot products of `x` against four weight rows at once (the window is loaded once).
#[inline]
pub fn dot4(x: &[i16], w: [&[i16]; 4]) -> [i32; 4] {
    #[cfg(target_arch = "x86_64")]
    {
        if fast() {
            // SAFETY: as in `dot`.
            return unsafe { dot4_avx512(x, w) };
        }
    }
    dot4_lanes(x, w)
}

/// `acc[o] = bias[o] + dot(x, weight[o])` for every row of the row-major `weight`
/// (`acc.len()` rows of `x.len()` values), four rows at a time.
#[inline]
pub fn matvec(x: &[i16], weight: &[i16], bias: &[i32], acc: &mut [i32]) {
    let n = x.len();
    let mut rows = weight.chunks_exact(n);
    let mut out = acc.chunks_exact_mut(4);
    let mut b = bias.chunks_exact(4);
    for (a, bs) in (&mut out).zip(&mut b) {
        let r: [&[i16]; 4] = std::array::from_fn(|_| rows.next().expect("a row per output"));
        let d = dot4(x, r);
        for ((a, d), b) in a.iter_mut().zip(d).zip(bs) {
            *a = d.wrapping_add(*b);
        }
    }
    for ((a, b), r) in out.into_remainder().iter_mut().zip(b.remainder()).zip(rows) {
        *a = dot(x, r).wrapping_add(*b);
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn fast() -> bool {
    use std::sync::OnceLock;
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn dot_avx512(x: &[i16], w: &[i16]) -> i32 {
    dot_lanes(x, w)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,avx512f,avx512bw,avx512vnni")]
unsafe fn dot4_avx512(x: &[i16], w: [&[i16]; 4]) -> [i32; 4] {
    dot4_lanes(x, w)
}

const LANES: usize = 32;

#[inline(always)]
fn dot_lanes(x: &[i16], w: &[i16]) -> i32 {
    let n = x.len().min(w.len());
    let (x, w) = (&x[..n], &w[..n]);
    let mut lanes = [0i32; LANES];
    let xc = x.chunks_exact(LANES);
    let wc = w.chunks_exact(LANES);
    let (xr, wr) = (xc.remainder(), wc.remainder());
    for (xs, ws) in xc.zip(wc) {
        for j in 0..LANES {
            lanes[j] = lanes[j].wrapping_add(xs[j] as i32 * ws[j] as i32);
        }
    }
    let mut sum = lanes.iter().fold(0i32, |s, &v| s.wrapping_add(v));
    for (&a, &b) in xr.iter().zip(wr) {
        sum = sum.wrapping_add(a as i32 * b as i32);
    }
    sum
}

#[inline(always)]
fn dot4_lanes(x: &[i16], w: [&[i16]; 4]) -> [i32; 4] {
    const L: usize = 16;
    let n = x.len();
    let w = w.map(|r| &r[..n]);
    let mut lanes = [[0i32; L]; 4];
    let full = n / L * L;
    let mut i = 0;
    while i < full {
        let xs = &x[i..i + L];
        for (r, lane) in lanes.iter_mut().enumerate() {
            let ws = &w[r][i..i + L];
            for j in 0..L {
                lane[j] = lane[j].wrapping_add(xs[j] as i32 * ws[j] as i32);
            }
        }
        i += L;
    }
    std::array::from_fn(|r| {
        let s = lanes[r].iter().fold(0i32, |s, &v| s.wrapping_add(v));
        x[full..]
            .iter()
            .zip(&w[r][full..])
            .fold(s, |s, (&a, &b)| s.wrapping_add(a as i32 * b as i32))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_forms_agree_with_a_plain_sum_for_every_remainder() {
        for n in 0..140 {
            let x: Vec<i16> = (0..n).map(|i| (i as i16 * 37 % 511) - 255).collect();
            let ws: Vec<Vec<i16>> = (0..4)
                .map(|r| (0..n).map(|i| ((i + r) as i16 * 91 % 255) - 127).collect())
                .collect();
            let expect: Vec<i32> = ws
                .iter()
                .map(|w| x.iter().zip(w).map(|(&a, &b)| a as i32 * b as i32).sum())
                .collect();
            assert_eq!(dot(&x, &ws[0]), expect[0], "n = {n}");
            assert_eq!(dot_lanes(&x, &ws[0]), expect[0], "n = {n}");
            let four = dot4(&x, [&ws[0], &ws[1], &ws[2], &ws[3]]);
            assert_eq!(four.to_vec(), expect, "n = {n}");
            assert_eq!(
                dot4_lanes(&x, [&ws[0], &ws[1], &ws[2], &ws[3]]).to_vec(),
                expect
            );
        }
    }
}
