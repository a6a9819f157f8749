//! What the CPU can do, detected once: the golden engine and the requantizer lanes pick their
//! fastest exact path from it (every path computes the same integers).

/// AVX-512 F/BW/DQ/VL: 8 x i64 and 16 x i32 lanes.
#[cfg(target_arch = "x86_64")]
pub(crate) fn avx512() -> bool {
    use std::sync::OnceLock;
    static AVX512: OnceLock<bool> = OnceLock::new();
    *AVX512.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
    })
}

/// AVX-512 VNNI on top of [`avx512`]: `vpdpbusd`, 64 u8 x i8 products summed into i32.
#[cfg(target_arch = "x86_64")]
pub(crate) fn vnni() -> bool {
    use std::sync::OnceLock;
    static VNNI: OnceLock<bool> = OnceLock::new();
    *VNNI.get_or_init(|| avx512() && is_x86_feature_detected!("avx512vnni"))
}
