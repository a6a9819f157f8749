// Reference conv2d / add of DESIGN section 5 for the network-level tests (tb_resblock.cpp,
// tb_resnet8.cpp), plus the ROM images of the test tops' rf_mac / rf_requant (FORM 2) and a
// per-channel (m, s) calibration that keeps the outputs spread over the int8 range.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "rf_ref.h"
#include "rf_tb.h"

namespace rf {

using Vec = std::vector<int>;

// conv2d NHWC / OHWI, padding (pt, pl) top/left; bottom/right implied by the output size.
struct Conv {
  int h, w, c, co, k, s, pt, pb, zx;
  Vec wt;  // [co][k][k][c]
  std::vector<int64_t> b;
  std::vector<uint64_t> m;
  std::vector<int> sh;
  int oh() const { return (h + pt + pb - k) / s + 1; }
  int ow() const { return (w + pt + pb - k) / s + 1; }
};

inline std::vector<int64_t> conv_acc(const Conv& cv, const Vec& x) {
  int OHc = cv.oh(), OWc = cv.ow();
  std::vector<int64_t> a(static_cast<size_t>(OHc) * OWc * cv.co);
  for (int oy = 0; oy < OHc; ++oy)
    for (int ox = 0; ox < OWc; ++ox)
      for (int o = 0; o < cv.co; ++o) {
        int64_t acc = cv.b[o];
        for (int ky = 0; ky < cv.k; ++ky)
          for (int kx = 0; kx < cv.k; ++kx) {
            int iy = oy * cv.s - cv.pt + ky, ix = ox * cv.s - cv.pt + kx;
            if (iy < 0 || iy >= cv.h || ix < 0 || ix >= cv.w) continue;  // padding taps skipped
            const int* px = &x[(static_cast<size_t>(iy) * cv.w + ix) * cv.c];
            const int* wp = &cv.wt[((static_cast<size_t>(o) * cv.k + ky) * cv.k + kx) * cv.c];
            for (int c = 0; c < cv.c; ++c) acc += static_cast<int64_t>(px[c] - cv.zx) * wp[c];
          }
        a[(static_cast<size_t>(oy) * OWc + ox) * cv.co + o] = acc;
      }
  return a;
}

inline Vec conv_q(const Conv& cv, const Vec& x, int zy, int lo, int kb, int rnd) {
  auto a = conv_acc(cv, x);
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    int o = static_cast<int>(i % cv.co);
    y[i] = clamp_i(rescale(a[i], cv.m[o], cv.sh[o], kb, rnd) + zy, lo, 127);
  }
  return y;
}

inline void random_conv(Conv& cv, Rng& rng, int bias) {
  cv.wt.resize(static_cast<size_t>(cv.co) * cv.k * cv.k * cv.c);
  for (auto& v : cv.wt) v = static_cast<int>(rng.range(-127, 127));
  cv.b.resize(cv.co);
  for (auto& v : cv.b) v = rng.range(-bias, bias);
}

// Per-channel (m, s) at kb bits (DESIGN section 1, M < 1 so double rounding is legal) mapping
// each channel's accumulator standard deviation over `xs` to about 50 codes.
inline void calibrate(Conv& cv, const std::vector<Vec>& xs, Rng& rng, int kb) {
  cv.m.assign(cv.co, 0);
  cv.sh.assign(cv.co, 0);
  std::vector<double> sum(cv.co, 0), sq(cv.co, 0);
  long n = 0;
  for (auto& x : xs) {
    auto a = conv_acc(cv, x);
    for (size_t i = 0; i < a.size(); ++i) {
      sum[i % cv.co] += static_cast<double>(a[i]);
      sq[i % cv.co] += static_cast<double>(a[i]) * static_cast<double>(a[i]);
    }
    n += static_cast<long>(a.size() / cv.co);
  }
  for (int o = 0; o < cv.co; ++o) {
    double sd = std::sqrt(std::max(0.0, sq[o] / n - (sum[o] / n) * (sum[o] / n)));
    double M = 50.0 / (sd + 1.0) * std::exp(static_cast<double>(rng.range(-30, 30)) / 100.0);
    int e;
    double f = std::frexp(M, &e);
    uint64_t m = static_cast<uint64_t>(std::llround(f * std::ldexp(1.0, kb)));
    if (m == (1ULL << kb)) {
      m >>= 1;
      ++e;
    }
    int s = kb - e;
    if (s > 62 || s < kb) {
      m = 0;
      s = 0;
    }
    cv.m[o] = m;
    cv.sh[o] = s;
  }
}

// rf_mac images (FOLD_ZX = 1, 32-bit accumulators) and the rf_requant FORM 2 image.
inline void write_conv_roms(const std::string& name, const Conv& cv, int simd, int pe, int rq, int kb) {
  int K = cv.k * cv.k * cv.c, SF = K / simd, NF = cv.co / pe;
  std::vector<Bits> ww, bw, rw;
  for (int nf = 0; nf < NF; ++nf) {
    for (int sf = 0; sf < SF; ++sf) {
      Bits word(pe * simd * 8);
      for (int p = 0; p < pe; ++p)
        for (int s = 0; s < simd; ++s)
          word.set((p * simd + s) * 8, 8, static_cast<uint8_t>(cv.wt[static_cast<size_t>(nf * pe + p) * K + sf * simd + s]));
      ww.push_back(word);
    }
    Bits b(pe * 32);
    for (int p = 0; p < pe; ++p) {
      int o = nf * pe + p;
      int64_t sw = 0;
      for (int i = 0; i < K; ++i) sw += cv.wt[static_cast<size_t>(o) * K + i];
      b.set(p * 32, 32, static_cast<uint64_t>(cv.b[o] - static_cast<int64_t>(cv.zx) * sw));
    }
    bw.push_back(b);
  }
  const int EW = kb + 6;
  for (int g = 0; g < cv.co / rq; ++g) {
    Bits word(rq * EW);
    for (int l = 0; l < rq; ++l) {
      word.set(l * EW, kb, cv.m[g * rq + l]);
      word.set(l * EW + kb, 6, static_cast<uint64_t>(cv.sh[g * rq + l]));
    }
    rw.push_back(word);
  }
  write_hex(name + "_w.hex", ww, pe * simd * 8);
  write_hex(name + "_b.hex", bw, pe * 32);
  write_hex(name + "_rq.hex", rw, rq * EW);
}

// TFLite ADD (DESIGN section 5) with a fused clamp [lo, 127].
inline int add_ref(int q1, int z1, int q2, int z2, uint64_t m1, int s1, uint64_t m2, int s2, uint64_t mo, int so,
                   int zout, int lo, int kb, int rnd) {
  i128 r1 = rescale(static_cast<int64_t>(q1 - z1) * (static_cast<int64_t>(1) << 20), m1, s1, kb, rnd);
  i128 r2 = rescale(static_cast<int64_t>(q2 - z2) * (static_cast<int64_t>(1) << 20), m2, s2, kb, rnd);
  return clamp_i(rescale(static_cast<int64_t>(r1 + r2), mo, so, kb, rnd) + zout, lo, 127);
}

}  // namespace rf
