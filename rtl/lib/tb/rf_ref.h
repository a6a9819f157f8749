// Exact reference arithmetic for the rtl/lib unit tests: DESIGN section 1 rescale in both
// roundings (the double rounding spelled as TFLite/gemmlowp spell it, with the nudge and the
// truncating division, so it cross-checks the floor form the RTL uses), the int8 clamp, and
// the canonical signed digits of a multiplicand. Everything is computed in 128-bit integers.
#pragma once

#include <cstdint>
#include <vector>

namespace rf {

using i128 = __int128;

// single rounding: (a*m + 2^(s-1)) >> s, floor; s = 0: a*m.
inline i128 rescale_single(int64_t a, uint64_t m, int s) {
  i128 p = static_cast<i128>(a) * static_cast<i128>(m);
  if (s == 0) return p;
  i128 sum = p + (static_cast<i128>(1) << (s - 1));
  // Floor division by 2^s (arithmetic shift of a negative __int128 is a floor in GCC/Clang;
  // spelled out to avoid relying on it).
  i128 d = static_cast<i128>(1) << s;
  i128 q = sum / d;
  if ((sum % d) != 0 && sum < 0) q -= 1;
  return q;
}

// gemmlowp SaturatingRoundingDoublingHighMul(a, b) with b = m << (31 - k) >= 0 (never saturates),
// exact for any a (TFLite's a is int32; the formula is the same in 128 bits).
inline i128 srdhm(int64_t a, uint64_t m, int k) {
  i128 b = static_cast<i128>(m) << (31 - k);
  i128 ab = static_cast<i128>(a) * b;
  i128 nudge = ab >= 0 ? (static_cast<i128>(1) << 30) : (1 - (static_cast<i128>(1) << 30));
  return (ab + nudge) / (static_cast<i128>(1) << 31);  // C++ division truncates toward zero
}

// gemmlowp RoundingDivideByPOT(x, n): ties away from zero.
inline i128 rdbpot(i128 x, int n) {
  if (n == 0) return x;
  i128 mask = (static_cast<i128>(1) << n) - 1;
  i128 rem = x & mask;
  i128 thr = (mask >> 1) + (x < 0 ? 1 : 0);
  i128 q = x >= 0 ? x / (mask + 1) : -((-x + mask) / (mask + 1));  // floor(x / 2^n)
  return q + (rem > thr ? 1 : 0);
}

// double rounding, defined for s >= k when m > 0; m = 0 gives 0 for any s.
inline i128 rescale_double(int64_t a, uint64_t m, int s, int k) {
  if (m == 0) return 0;
  return rdbpot(srdhm(a, m, k), s - k);
}

inline i128 rescale(int64_t a, uint64_t m, int s, int k, int rounding) {
  return rounding ? rescale_double(a, m, s, k) : rescale_single(a, m, s);
}

inline int clamp_i(i128 v, int lo, int hi) {
  return v < lo ? lo : v > hi ? hi : static_cast<int>(v);
}

// Non-adjacent form of m: (position, negative) pairs, lowest first.
struct Digit {
  int pos;
  bool neg;
};
inline std::vector<Digit> naf(uint64_t m) {
  std::vector<Digit> d;
  int i = 0;
  while (m != 0) {
    if (m & 1) {
      if ((m & 3) == 3) {
        d.push_back({i, true});
        m += 1;
      } else {
        d.push_back({i, false});
        m -= 1;
      }
    }
    m >>= 1;
    ++i;
  }
  return d;
}

// Inverse of an odd x modulo 2^64 (Newton iteration).
inline uint64_t inv_odd(uint64_t x) {
  uint64_t y = x;
  for (int i = 0; i < 6; ++i) y *= 2 - x * y;
  return y;
}

// Smallest a >= 0 with a*m = 2^(t-1) (mod 2^t), or -1 if there is none (m = 2^v m', v >= t).
inline int64_t tie_base(uint64_t m, int t) {
  if (t <= 0 || m == 0) return -1;
  int v = 0;
  while (((m >> v) & 1) == 0) ++v;
  if (v > t - 1) return -1;
  int u = t - v;  // a*m' = 2^(t-1-v) (mod 2^u)
  uint64_t modmask = u >= 64 ? ~0ULL : ((1ULL << u) - 1);
  uint64_t a = (inv_odd(m >> v) * (1ULL << (t - 1 - v))) & modmask;
  return static_cast<int64_t>(a);
}

}  // namespace rf
