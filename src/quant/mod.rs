//! The integer semantics of ratflow, defined once (README "Integer semantics").
//!
//! Everything that turns a 32-bit accumulator into an int8 activation lives here: the
//! derivation of a dyadic multiplier `(m, s)` from a real rescale factor at `k` bits, the two
//! rounding modes, zero point, ReLU clamp and saturation, and the accumulator bound a model must
//! respect. The golden model executes these functions, the trainer emulates them, and the RTL
//! generator bakes the same constants and picks its datapath from the same [`Rounding`]; a change
//! here is a format change (bump the int-model `version`).

pub mod csd;

use std::fmt;

/// Widest rescale multiplicand: LiteRT's int32 multiplier (the paper's "32-bit rescaler").
pub const MAX_K_BITS: u32 = 31;
/// Largest right shift a model may carry.
pub const MAX_SHIFT: u32 = 62;
/// Largest `rescale.csd_digits` an int-model may carry. A 31-bit `m` never needs more than 16
/// non-zero CSD digits, so a larger budget could not constrain anything.
pub const MAX_CSD_DIGITS: u32 = 16;
/// `|x - Z_x|` never exceeds this for int8 codes and an int8 zero point.
pub const MAX_CENTRED_INPUT: i64 = 255;

/// How `a * m * 2^-s` is rounded to an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// `(a*m + 2^(s-1)) >> s`: one rounding, ties toward +inf (TFLITE_SINGLE_ROUNDING). The
    /// natural hardware form: one multiplier, one adder, one shifter.
    Single,
    /// gemmlowp/TFLite `MultiplyByQuantizedMultiplier`: a saturating rounding doubling high
    /// multiply by `m << (31-k)`, then a rounding right shift by `s - k` (ties away from zero).
    Double,
}

impl Rounding {
    pub fn as_str(self) -> &'static str {
        match self {
            Rounding::Single => "single",
            Rounding::Double => "double",
        }
    }

    pub fn parse(s: &str) -> Option<Rounding> {
        match s {
            "single" => Some(Rounding::Single),
            "double" => Some(Rounding::Double),
            _ => None,
        }
    }
}

impl fmt::Display for Rounding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dyadic rescale factor `m * 2^-s` with `m < 2^k`: the integer pair a requantizer bakes in.
/// In files, `multiplier` is `m` alone and `shift` is `s`; "multiplier" never means the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dyadic {
    pub m: u32,
    pub s: u32,
}

impl Dyadic {
    /// The real value this multiplier stands for.
    pub fn value(self) -> f64 {
        self.m as f64 * (-(self.s as f64)).exp2()
    }
}

/// Why a real rescale factor has no `(m, s)` at `k` bits.
#[derive(Clone, Debug, PartialEq)]
pub enum DeriveError {
    BadK(u32),
    /// Zero, negative, NaN or infinite.
    NotPositive(f64),
    /// `M` needs a left shift (`s < 0`): the layer's output scale is far too small.
    TooLarge(f64),
}

impl fmt::Display for DeriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeriveError::BadK(k) => write!(f, "k_bits = {k} is outside 1..={MAX_K_BITS}"),
            DeriveError::NotPositive(m) => {
                write!(f, "rescale factor M = {m} is not a positive finite number")
            }
            DeriveError::TooLarge(m) => write!(
                f,
                "rescale factor M = {m} is too large: it would need a negative shift"
            ),
        }
    }
}

impl std::error::Error for DeriveError {}

/// Result of [`derive_multiplier`]: the multiplier, and whether it underflowed to zero
/// (`s > 62`, in which case the output is the zero point and the caller should warn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Derived {
    pub mult: Dyadic,
    pub underflow: bool,
}

/// Splits a finite positive `x` into `f * 2^e` with `f` in [0.5, 1), exactly (C's `frexp`).
pub fn frexp(x: f64) -> (f64, i32) {
    debug_assert!(x.is_finite() && x > 0.0);
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    if biased == 0 {
        // Subnormal: scale into the normal range first, which is exact.
        let (f, e) = frexp(x * 2f64.powi(64));
        return (f, e - 64);
    }
    let f = f64::from_bits((bits & !(0x7ffu64 << 52)) | (1022u64 << 52));
    (f, biased - 1022)
}

/// Real rescale factor `M > 0` to `(m, s)` at `k` bits (README "(m, s) derivation").
///
/// Always derives from the real value: rounding to 31 bits first and then to `k` can differ.
pub fn derive_multiplier(real: f64, k: u32) -> Result<Derived, DeriveError> {
    if !(1..=MAX_K_BITS).contains(&k) {
        return Err(DeriveError::BadK(k));
    }
    if !(real.is_finite() && real > 0.0) {
        return Err(DeriveError::NotPositive(real));
    }
    let (f, mut e) = frexp(real);
    // f * 2^k is exact (a power-of-two scaling) and below 2^31, so f64::round, which rounds
    // half away from zero, sees the true value.
    let mut m = (f * (1u64 << k) as f64).round() as u64;
    if m == 1u64 << k {
        m = 1u64 << (k - 1);
        e += 1;
    }
    let s = k as i64 - e as i64;
    if s < 0 {
        return Err(DeriveError::TooLarge(real));
    }
    if s > MAX_SHIFT as i64 {
        return Ok(Derived {
            mult: Dyadic { m: 0, s: 0 },
            underflow: true,
        });
    }
    Ok(Derived {
        mult: Dyadic {
            m: m as u32,
            s: s as u32,
        },
        underflow: false,
    })
}

/// [`derive_multiplier`] under a multiplierless constraint: `m` has at most `max_digits`
/// non-zero canonical signed digits, so a baked constant costs at most `max_digits - 1` adders.
/// The mantissa `f * 2^k` is projected onto the nearest such integer (2^k itself, a single
/// digit, included; ties away from zero), then normalised exactly as the unconstrained rule does.
/// With `max_digits >= k` (no constraint bites) the result equals [`derive_multiplier`]'s.
pub fn derive_multiplier_csd(real: f64, k: u32, max_digits: u32) -> Result<Derived, DeriveError> {
    if !(1..=MAX_K_BITS).contains(&k) {
        return Err(DeriveError::BadK(k));
    }
    if !(real.is_finite() && real > 0.0) {
        return Err(DeriveError::NotPositive(real));
    }
    let (f, e) = frexp(real);
    let target = f * (1u64 << k) as f64;
    let below = csd::nearest(target, max_digits.max(1), 1u64 << k).unwrap_or(0);
    let top = (1u64 << k) as f64;
    // 2^k has one digit; it wins when at least as close (ties away from zero, i.e. upward).
    let m_real = if top - target <= (target - below as f64) {
        top
    } else {
        below as f64
    };
    derive_multiplier(m_real * (e as f64 - k as f64).exp2(), k)
}

/// Why a `(m, s)` pair is not allowed for a given `k` and rounding mode.
pub fn check_multiplier(mult: Dyadic, k: u32, rounding: Rounding) -> Result<(), String> {
    if !(1..=MAX_K_BITS).contains(&k) {
        return Err(format!("k_bits = {k} is outside 1..={MAX_K_BITS}"));
    }
    if (mult.m as u64) >> k != 0 {
        return Err(format!("multiplier {} does not fit k_bits = {k}", mult.m));
    }
    if mult.s > MAX_SHIFT {
        return Err(format!("shift {} exceeds {MAX_SHIFT}", mult.s));
    }
    // A zero multiplier outputs the zero point in either mode; DESIGN's underflow encoding
    // (0, 0) would otherwise be unrepresentable in `double` mode.
    if rounding == Rounding::Double && mult.s < k && mult.m != 0 {
        return Err(format!(
            "shift {} is below k_bits = {k}, which `double` rounding cannot express (M >= 1); use `single`",
            mult.s
        ));
    }
    Ok(())
}

/// gemmlowp's SaturatingRoundingDoublingHighMul for `b >= 0`: `floor((a*b + 2^30) / 2^31)`.
/// With a non-negative `b` the saturating case (`a = b = INT32_MIN`) cannot occur.
#[inline]
fn srdhm(a: i32, b: i32) -> i32 {
    debug_assert!(b >= 0);
    ((a as i64 * b as i64 + (1i64 << 30)) >> 31) as i32
}

/// gemmlowp's RoundingDivideByPOT: `x / 2^n` rounded half away from zero. Done in i64 so
/// that `n` may exceed 31 (`s - k` reaches 61), where gemmlowp would assert.
#[inline]
fn rounding_divide_by_pot(x: i32, n: u32) -> i64 {
    debug_assert!(n <= 62);
    let x = x as i64;
    let mask = (1i64 << n) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i64::from(x < 0);
    (x >> n) + i64::from(remainder > threshold)
}

/// `round(a * m * 2^-s)` under the given rounding mode, exactly (no intermediate overflow).
///
/// The caller guarantees [`check_multiplier`] holds for `(mult, k, rounding)`.
#[inline]
pub fn rescale(a: i32, mult: Dyadic, k: u32, rounding: Rounding) -> i64 {
    if mult.m == 0 {
        return 0;
    }
    match rounding {
        Rounding::Single => {
            // |a*m| < 2^62 and the rounding term is at most 2^61: i64 holds it.
            let p = a as i64 * mult.m as i64;
            if mult.s == 0 {
                p
            } else {
                (p + (1i64 << (mult.s - 1))) >> mult.s
            }
        }
        Rounding::Double => {
            let m31 = (mult.m << (MAX_K_BITS - k)) as i32;
            rounding_divide_by_pot(srdhm(a, m31), mult.s - k)
        }
    }
}

/// The rescaler settings every stage shares: multiplicand width `k_bits`, rounding mode, and an
/// optional multiplierless budget (at most `csd_digits` non-zero canonical signed digits per
/// `m`). The int-model carries one as its default and ops may override `k_bits`/`rounding`;
/// training derives with it; the RTL picks its datapath from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rescale {
    pub k_bits: u32,
    pub rounding: Rounding,
    pub csd_digits: Option<u32>,
}

impl Rescale {
    /// A k-bit rescale without a digit budget.
    pub fn plain(k_bits: u32, rounding: Rounding) -> Rescale {
        Rescale {
            k_bits,
            rounding,
            csd_digits: None,
        }
    }

    /// `(m, s)` of a real rescale factor: [`derive_multiplier`] at `k_bits`, or
    /// [`derive_multiplier_csd`] when a digit budget is set. The one projection every stage
    /// applies (import, training forward pass, export, sweeps).
    pub fn derive(&self, real: f64) -> Result<Derived, DeriveError> {
        match self.csd_digits {
            None => derive_multiplier(real, self.k_bits),
            Some(d) => derive_multiplier_csd(real, self.k_bits, d),
        }
    }

    /// Why `mult` is not allowed under these settings (width, shift, rounding, digit budget).
    pub fn check(&self, mult: Dyadic) -> Result<(), String> {
        check_multiplier(mult, self.k_bits, self.rounding)?;
        if let Some(d) = self.csd_digits {
            let w = csd::weight(mult.m as u64);
            if w > d {
                return Err(format!(
                    "multiplier {} has {w} non-zero CSD digits, more than csd_digits = {d}",
                    mult.m
                ));
            }
        }
        Ok(())
    }

    /// `k = 8`, or `k = 8, at most 2 CSD digits`, for messages.
    pub fn describe(&self) -> String {
        match self.csd_digits {
            None => format!("k = {}", self.k_bits),
            Some(d) => format!("k = {}, at most {d} CSD digits", self.k_bits),
        }
    }

    /// File-name tag: `k8`, or `k8_csd2` with a digit budget.
    pub fn tag(&self) -> String {
        match self.csd_digits {
            None => format!("k{}", self.k_bits),
            Some(d) => format!("k{}_csd{d}", self.k_bits),
        }
    }
}

/// An op's fused activation as output bounds `[lo, hi]` (TFLite's `output_activation_min/max`):
/// NONE is [-128, 127], RELU [max(-128, Z_y), 127], RELU6 [max(-128, Z_y), min(127, Z_y + q6)].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Clamp {
    pub lo: i8,
    pub hi: i8,
}

impl Clamp {
    pub const NONE: Clamp = Clamp { lo: -128, hi: 127 };

    /// A fused ReLU at output zero point `zp`: real 0 is the lowest code.
    pub fn relu(zp: i8) -> Clamp {
        Clamp { lo: zp, hi: 127 }
    }

    /// A fused ReLU6 (TFLite's `CalculateActivationRangeQuantized`): the upper bound is real 6,
    /// `Z_y + round_half_away(float32(6) / float32(S_y))`, saturated to int8.
    pub fn relu6(zp: i8, scale: f64) -> Clamp {
        let q6 = (6.0f32 / scale as f32).round() as i64;
        Clamp {
            lo: zp,
            hi: (zp as i64 + q6).clamp(-128, 127) as i8,
        }
    }

    #[inline]
    pub fn apply(self, v: i64) -> i8 {
        v.clamp(self.lo as i64, self.hi as i64) as i8
    }
}

/// Everything needed to requantize one output channel: `y = clamp(r + Z_y, lo, hi)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requant {
    pub mult: Dyadic,
    pub k: u32,
    pub rounding: Rounding,
    pub zero_point: i8,
    pub clamp: Clamp,
}

impl Requant {
    /// Lowest output code (the zero point under a fused ReLU).
    pub fn lo(&self) -> i8 {
        self.clamp.lo
    }

    /// Highest output code.
    pub fn hi(&self) -> i8 {
        self.clamp.hi
    }

    #[inline]
    pub fn apply(&self, a: i32) -> i8 {
        let r = rescale(a, self.mult, self.k, self.rounding);
        // r is at most |a| * 2^31 in magnitude, so adding an int8 zero point cannot overflow.
        self.clamp.apply(r + self.zero_point as i64)
    }
}

/// `double` rounding, branch-free: `RoundingDivideByPOT(SRDHM(a, m31), n)` with `m31 >= 0`
/// (SRDHM cannot saturate then) and `0 <= n <= 62`.
#[inline(always)]
fn double_rescale(a: i32, m31: i64, n: i64) -> i64 {
    // SRDHM: floor((a * m31 + 2^30) / 2^31).
    let x = (a as i64 * m31 + (1 << 30)) >> 31;
    // RoundingDivideByPOT: ties away from zero.
    let mask = (1i64 << n) - 1;
    let threshold = (mask >> 1) + (x >> 63 & 1);
    (x >> n) + ((x & mask) > threshold) as i64
}

/// Fewest lanes [`RequantLanes`] processes per chunk.
const MIN_LANES: usize = 64;

/// The requantizers of one op's channels in a form the compiler vectorizes: per-channel
/// constants side by side, every step branch-free in i64. It computes exactly
/// [`Requant::apply`] (a test holds the two equal on every corner and at random); the golden
/// engine uses it for whole tensors, where the per-element form would dominate the run time.
#[derive(Clone, Debug)]
pub struct RequantLanes {
    rounding: Rounding,
    /// `single`: m; `double`: `m << (31 - k)`.
    mult: Vec<i64>,
    /// `single`: s; `double`: `s - k` (0 for m = 0, whose result is 0 whatever the shift).
    shift: Vec<i64>,
    /// `single`: `2^(s-1)` (0 for s = 0).
    round: Vec<i64>,
    zero_point: Vec<i64>,
    lo: Vec<i64>,
    hi: Vec<i64>,
}

impl RequantLanes {
    /// Lanes for channels `0..rq.len()`; every requantizer must satisfy [`check_multiplier`]
    /// and they must share one rounding mode.
    pub fn new(rq: &[Requant]) -> RequantLanes {
        let rounding = rq.first().map_or(Rounding::Single, |r| r.rounding);
        assert!(
            rq.iter().all(|r| r.rounding == rounding),
            "one rounding per op"
        );
        let mut l = RequantLanes {
            rounding,
            mult: Vec::new(),
            shift: Vec::new(),
            round: Vec::new(),
            zero_point: Vec::new(),
            lo: Vec::new(),
            hi: Vec::new(),
        };
        for r in rq {
            let (m, s) = (r.mult.m as i64, r.mult.s as i64);
            match rounding {
                Rounding::Single => {
                    l.mult.push(m);
                    l.shift.push(s);
                    l.round.push(if s == 0 { 0 } else { 1 << (s - 1) });
                }
                Rounding::Double => {
                    l.mult.push(m << (MAX_K_BITS - r.k));
                    l.shift.push(if m == 0 { 0 } else { s - r.k as i64 });
                    l.round.push(0);
                }
            }
            l.zero_point.push(r.zero_point as i64);
            l.lo.push(r.clamp.lo as i64);
            l.hi.push(r.clamp.hi as i64);
        }
        // The constants repeat with the channels, so whole pixels can be taken together: at
        // least MIN_LANES lanes per chunk, or the vectorized loop body (several vectors wide)
        // would never run on 16 channels and everything would fall to its scalar epilogue.
        let c = rq.len().max(1);
        let copies = MIN_LANES.div_ceil(c);
        for v in [
            &mut l.mult,
            &mut l.shift,
            &mut l.round,
            &mut l.zero_point,
            &mut l.lo,
            &mut l.hi,
        ] {
            *v = v.repeat(copies);
        }
        l
    }

    /// One requantizer for every element: its constants repeated over `width` lanes.
    pub fn uniform(rq: Requant, width: usize) -> RequantLanes {
        RequantLanes::new(&vec![rq; width])
    }

    pub fn len(&self) -> usize {
        self.mult.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mult.is_empty()
    }

    /// `out[i] = requant[i % C].apply(acc[i])` for `acc` laid out `[pixels][C]` (lanes hold
    /// the C channels repeated; a last, partial chunk takes the first lanes).
    pub fn apply(&self, acc: &[i32], out: &mut [i8]) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::avx512() {
                // SAFETY: the CPU has the features `apply_avx512` is compiled for.
                unsafe { self.apply_avx512(acc, out) };
                return;
            }
        }
        self.apply_lanes(acc, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    unsafe fn apply_avx512(&self, acc: &[i32], out: &mut [i8]) {
        self.apply_lanes(acc, out);
    }

    #[inline(always)]
    fn apply_lanes(&self, acc: &[i32], out: &mut [i8]) {
        let c = self.len();
        let mut a = acc.chunks_exact(c);
        let mut y = out.chunks_exact_mut(c);
        for (a, y) in (&mut a).zip(&mut y) {
            self.chunk(a, y);
        }
        // A tail shorter than C (uniform lanes over a tensor whose length is no multiple).
        self.chunk(a.remainder(), y.into_remainder());
    }

    /// Channels `0..a.len()` of one pixel. The rounding is matched outside the loops, and each
    /// loop reads only local slices of equal length, so it is straight-line code the compiler
    /// vectorizes without run-time checks.
    #[inline(always)]
    fn chunk(&self, a: &[i32], y: &mut [i8]) {
        let n = a.len();
        let (mult, shift, round) = (&self.mult[..n], &self.shift[..n], &self.round[..n]);
        let (zp, lo, hi) = (&self.zero_point[..n], &self.lo[..n], &self.hi[..n]);
        let y = &mut y[..n];
        // max/min, not clamp: clamp asserts lo <= hi, and the assertion blocks vectorization
        // (RequantLanes::new takes validated clamps).
        match self.rounding {
            Rounding::Single => {
                for i in 0..n {
                    let r = (a[i] as i64 * mult[i] + round[i]) >> shift[i];
                    y[i] = (r + zp[i]).max(lo[i]).min(hi[i]) as i8;
                }
            }
            Rounding::Double => {
                for i in 0..n {
                    let r = double_rescale(a[i], mult[i], shift[i]);
                    y[i] = (r + zp[i]).max(lo[i]).min(hi[i]) as i8;
                }
            }
        }
    }

    /// The rescaled values `round(a * m * 2^-s)` alone (no zero point, no clamp), for an
    /// intermediate such as ADD's scaled inputs; `out` as `apply`'s, in i32 (the caller's bound
    /// proves they fit).
    pub fn rescale(&self, acc: &[i32], out: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::avx512() {
                // SAFETY: the CPU has the features `rescale_avx512` is compiled for.
                unsafe { self.rescale_avx512(acc, out) };
                return;
            }
        }
        self.rescale_lanes(acc, out);
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    unsafe fn rescale_avx512(&self, acc: &[i32], out: &mut [i32]) {
        self.rescale_lanes(acc, out);
    }

    #[inline(always)]
    fn rescale_lanes(&self, acc: &[i32], out: &mut [i32]) {
        let c = self.len();
        for (a, y) in acc.chunks(c).zip(out.chunks_mut(c)) {
            let n = a.len().min(y.len());
            let (a, y) = (&a[..n], &mut y[..n]);
            let (mult, shift, round) = (&self.mult[..n], &self.shift[..n], &self.round[..n]);
            match self.rounding {
                Rounding::Single => {
                    for i in 0..n {
                        y[i] = ((a[i] as i64 * mult[i] + round[i]) >> shift[i]) as i32;
                    }
                }
                Rounding::Double => {
                    for i in 0..n {
                        y[i] = double_rescale(a[i], mult[i], shift[i]) as i32;
                    }
                }
            }
        }
    }
}

/// AVERAGE_POOL_2D's rounding (TFLite `reference_integer_ops::AveragePool`): the mean of `n`
/// raw codes summing to `sum`, rounded half away from zero with a truncating division.
#[inline]
pub fn average(sum: i32, n: u32) -> i32 {
    debug_assert!(n > 0);
    let n = n as i32;
    if sum > 0 {
        (sum + n / 2) / n
    } else {
        (sum - n / 2) / n
    }
}

/// The three rescalers of an int8 ADD (TFLite `reference_integer_ops::Add`, `AddElementwise`):
/// each input is centred, widened by `2^left_shift`, rescaled onto the common scale
/// `2 max(S_1, S_2)`, summed, and the sum rescaled to the output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddRequant {
    pub input_zero_points: [i8; 2],
    pub left_shift: u32,
    pub inputs: [Dyadic; 2],
    pub output: Requant,
}

/// TFLite's left shift of int8 ADD inputs (`reference_integer_ops::Add`, `op_params.left_shift`).
pub const ADD_LEFT_SHIFT: u32 = 20;

/// The real factors of an int8 ADD's three rescalers from its scales, as TFLite's `add.cc`
/// `PrepareGeneralSubOp` forms them in double precision: `twice_max = 2 max(S_1, S_2)`,
/// `M_i = S_i / twice_max`, `M_out = twice_max / (2^left_shift S_out)`.
pub fn add_factors(s1: f64, s2: f64, s_out: f64, left_shift: u32) -> [f64; 3] {
    let twice_max = 2.0 * s1.max(s2);
    [
        s1 / twice_max,
        s2 / twice_max,
        twice_max / ((1u64 << left_shift) as f64 * s_out),
    ]
}

/// Largest `left_shift` for which `(q - Z) * 2^left_shift` fits i32 for every int8 `q`, `Z`.
pub const MAX_ADD_LEFT_SHIFT: u32 = 23;

impl AddRequant {
    /// One input's contribution `rescale((q - Z_i) * 2^left_shift, m_i, s_i)`.
    #[inline]
    pub fn scaled_input(&self, i: usize, q: i8) -> i64 {
        let centred = (q as i32 - self.input_zero_points[i] as i32) << self.left_shift;
        rescale(centred, self.inputs[i], self.output.k, self.output.rounding)
    }

    /// `y = clamp(rescale(a_1 + a_2, m_out, s_out) + Z_out, lo, hi)`. The model's validation
    /// guarantees that `a_1 + a_2` fits i32.
    #[inline]
    pub fn apply(&self, q1: i8, q2: i8) -> i8 {
        let sum = self.scaled_input(0, q1) + self.scaled_input(1, q2);
        self.output.apply(sum as i32)
    }

    /// Largest `|a_1 + a_2|` over every pair of int8 codes: what must fit i32.
    pub fn sum_bound(&self) -> i64 {
        (0..2)
            .map(|i| {
                [-128i8, 127]
                    .iter()
                    .map(|&q| self.scaled_input(i, q).abs())
                    .max()
                    .unwrap_or(0)
            })
            .sum()
    }
}

/// TFLite's QUANTIZE of a real value: `clamp(round_half_away(r / S) + Z, -128, 127)` with the
/// division in float32 (`reference_ops::AffineQuantize`). For MNIST pixels, `r = p / 255` in
/// float32 and S = 1/255, Z = -128, this is exactly `p - 128`.
pub fn quantize_real(r: f32, scale: f64, zero_point: i8) -> i8 {
    let q = (r / scale as f32).round();
    // f32 -> i64 saturates, so huge or infinite quotients clamp like TFLite's int32 path.
    (q as i64 + zero_point as i64).clamp(-128, 127) as i8
}

/// Worst-case `|accumulator|` of one output channel: `255 * sum|w| + |b|`.
pub fn accumulator_bound(weights: &[i8], bias: i32) -> i64 {
    let sum: i64 = weights.iter().map(|&w| (w as i64).abs()).sum();
    MAX_CENTRED_INPUT * sum + (bias as i64).abs()
}

/// Whether a channel's worst case fits the i32 accumulator the hardware and golden model use.
pub fn accumulator_fits(weights: &[i8], bias: i32) -> bool {
    accumulator_bound(weights, bias) <= i32::MAX as i64
}

/// Symmetric per-channel int8 weight scale: `max|W| / 127` (1.0 for an all-zero row, so the
/// codes are all zero and the scale stays a positive number).
pub fn weight_scale(row: &[f32]) -> f64 {
    let max = row.iter().fold(0f64, |acc, &w| acc.max((w as f64).abs()));
    if max > 0.0 { max / 127.0 } else { 1.0 }
}

/// `clamp(round(W / S_w), -127, 127)`.
pub fn quantize_weight(w: f32, scale: f64) -> i8 {
    (w as f64 / scale).round().clamp(-127.0, 127.0) as i8
}

/// `round(B / (S_x * S_w))`, saturated to i32 (the accumulator bound check rejects the model
/// if saturation mattered).
pub fn quantize_bias(b: f32, input_scale: f64, weight_scale: f64) -> i32 {
    (b as f64 / (input_scale * weight_scale))
        .round()
        .clamp(i32::MIN as f64, i32::MAX as f64) as i32
}

/// Affine int8 parameters `(S, Z)` for a real range, widened to include 0 so that real zero is
/// exactly representable (ReLU outputs and padding).
pub fn affine_params(lo: f64, hi: f64) -> (f64, i8) {
    let lo = lo.min(0.0);
    let hi = hi.max(0.0);
    let span = hi - lo;
    if !(span.is_finite() && span > 0.0) {
        return (1.0 / 255.0, 0);
    }
    let scale = span / 255.0;
    let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i8;
    (scale, zp)
}

#[cfg(test)]
mod tests;
