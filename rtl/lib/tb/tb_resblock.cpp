// ResNet basic block through tb_resblock.v: random weights, per-channel (m, s) calibrated from
// the accumulator spread, the block computed here with DESIGN section 5's conv2d and add, every
// output element compared under random bubbles and stalls, then the cycles per block at full
// speed. The harness also evaluates README.md's skip-FIFO formula
//     D = max over output pixels p of (N_A(p) - R_B(p)) * C/SIMD - 1 beats,
// N_A(p) = input pixels the main branch must have taken before it can emit output pixel p (the
// composed window needs), R_B(p) = input pixels the skip branch has certainly released while
// its output p waits for the add (p for an identity skip; for a projection, the pixels before
// its window's first needed word plus what its line buffer holds), the -1 being the fork's
// register (exact for an identity skip, sufficient for a projection), and prints it next to the
// configured SKIP_DEPTH. With +EXPECT_DEADLOCK the test passes only if the watchdog reports a
// deadlock (a FIFO one beat short of the formula for an identity skip, where it is exact).
#include "Vtb_resblock.h"
#include "rf_ref.h"
#include "rf_tb.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace {

constexpr int H = P_H, W = P_W, C = P_C, CO = P_CO, ST = P_STRIDE, SIMD = P_SIMD, PE = P_PE, RQ = P_RQ;
constexpr int DEPTH = P_SKIP_DEPTH, ZX = P_ZX, ZA = P_ZA, KB = P_K_BITS, RND = P_ROUNDING;
constexpr uint64_t M1 = P_M1, M2 = P_M2, MO = P_MO;
constexpr int S1 = P_S1, S2 = P_S2, SO = P_SO, ZOUT = P_ZOUT;
#ifdef P_EXPECT_DEADLOCK
constexpr bool kExpectDeadlock = true;
#else
constexpr bool kExpectDeadlock = false;
#endif
constexpr int PT1 = ST == 1 ? 1 : 0, PB1 = 1;
constexpr int OH = (H + PT1 + PB1 - 3) / ST + 1, OW = (W + PT1 + PB1 - 3) / ST + 1;

using Vec = std::vector<int>;
struct Conv {
  int h, w, c, co, k, s, pt, zx;
  Vec wt;  // [co][k][k][c]
  std::vector<int64_t> b;
  std::vector<uint64_t> m;
  std::vector<int> sh;
  int oh() const { return (h + pt + (k == 1 ? 0 : 1) - k) / s + 1; }
  int ow() const { return oh() * 0 + (w + pt + (k == 1 ? 0 : 1) - k) / s + 1; }
};

std::vector<int64_t> conv_acc(const Conv& cv, const Vec& x) {
  int OHc = cv.oh(), OWc = cv.ow();
  std::vector<int64_t> a(static_cast<size_t>(OHc) * OWc * cv.co);
  for (int oy = 0; oy < OHc; ++oy)
    for (int ox = 0; ox < OWc; ++ox)
      for (int o = 0; o < cv.co; ++o) {
        int64_t acc = cv.b[o];
        for (int ky = 0; ky < cv.k; ++ky)
          for (int kx = 0; kx < cv.k; ++kx) {
            int iy = oy * cv.s - cv.pt + ky, ix = ox * cv.s - cv.pt + kx;
            if (iy < 0 || iy >= cv.h || ix < 0 || ix >= cv.w) continue;
            for (int c = 0; c < cv.c; ++c)
              acc += static_cast<int64_t>(x[(static_cast<size_t>(iy) * cv.w + ix) * cv.c + c] - cv.zx) *
                     cv.wt[((static_cast<size_t>(o) * cv.k + ky) * cv.k + kx) * cv.c + c];
          }
        a[(static_cast<size_t>(oy) * OWc + ox) * cv.co + o] = acc;
      }
  return a;
}

Vec conv_q(const Conv& cv, const Vec& x, int zy, int lo) {
  auto a = conv_acc(cv, x);
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    int o = static_cast<int>(i % cv.co);
    y[i] = rf::clamp_i(rf::rescale(a[i], cv.m[o], cv.sh[o], KB, RND) + zy, lo, 127);
  }
  return y;
}

void calibrate(Conv& cv, const std::vector<Vec>& xs, rf::Rng& rng) {
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
    uint64_t m = static_cast<uint64_t>(std::llround(f * std::ldexp(1.0, KB)));
    if (m == (1ULL << KB)) { m >>= 1; ++e; }
    int s = KB - e;
    if (s > 62 || s < KB) { m = 0; s = 0; }
    cv.m[o] = m;
    cv.sh[o] = s;
  }
}

void write_roms(const std::string& name, const Conv& cv) {
  int K = cv.k * cv.k * cv.c, SF = K / SIMD, NF = cv.co / PE;
  std::vector<rf::Bits> ww, bw, rw;
  for (int nf = 0; nf < NF; ++nf) {
    for (int sf = 0; sf < SF; ++sf) {
      rf::Bits word(PE * SIMD * 8);
      for (int p = 0; p < PE; ++p)
        for (int s = 0; s < SIMD; ++s)
          word.set((p * SIMD + s) * 8, 8, static_cast<uint8_t>(cv.wt[static_cast<size_t>(nf * PE + p) * K + sf * SIMD + s]));
      ww.push_back(word);
    }
    rf::Bits b(PE * 32);
    for (int p = 0; p < PE; ++p) {
      int o = nf * PE + p;
      int64_t sw = 0;
      for (int i = 0; i < K; ++i) sw += cv.wt[static_cast<size_t>(o) * K + i];
      b.set(p * 32, 32, static_cast<uint64_t>(cv.b[o] - static_cast<int64_t>(cv.zx) * sw));
    }
    bw.push_back(b);
  }
  const int EW = KB + 6;
  for (int g = 0; g < cv.co / RQ; ++g) {
    rf::Bits word(RQ * EW);
    for (int l = 0; l < RQ; ++l) {
      word.set(l * EW, KB, cv.m[g * RQ + l]);
      word.set(l * EW + KB, 6, static_cast<uint64_t>(cv.sh[g * RQ + l]));
    }
    rw.push_back(word);
  }
  rf::write_hex(name + "_w.hex", ww, PE * SIMD * 8);
  rf::write_hex(name + "_b.hex", bw, PE * 32);
  rf::write_hex(name + "_rq.hex", rw, RQ * EW);
}

// Input pixels a window must have consumed before it can emit output pixel index q of an
// (oh x ow) output grid (0 when its window lies in the padding): DESIGN section 5's iy/ix.
long need_px(int h, int w, int k, int s, int pt, int ow, long q) {
  int oy = static_cast<int>(q / ow), ox = static_cast<int>(q % ow);
  int ry = std::min(h - 1, oy * s - pt + k - 1), rx = std::min(w - 1, ox * s - pt + k - 1);
  if (ry < 0 || rx < 0) return 0;
  return static_cast<long>(ry) * w + rx + 1;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  char nm[200];
  std::snprintf(nm, sizeof nm, "resblock %dx%dx%d->%dx%dx%d stride %d SIMD=%d PE=%d skip FIFO %d%s", H, W, C, OH, OW, CO, ST, SIMD,
                PE, DEPTH, kExpectDeadlock ? " (expects a deadlock)" : "");
  rf::Report rep(nm, args.max_report);

  // Skip-FIFO formula (README.md): composed window needs of the main branch vs the skip branch.
  long dmax = 0;
  for (long p = 0; p < static_cast<long>(OH) * OW; ++p) {
    long n2 = need_px(OH, OW, 3, 1, 1, OW, p);                      // conv2 needs conv1 pixels 0..n2-1
    long na = n2 == 0 ? 0 : need_px(H, W, 3, ST, PT1, OW, n2 - 1);  // conv1 needs input pixels
    long oy = p / OW, ox = p % OW;
    // Identity: pixels 0..p-1 joined and gone. Projection (1x1 stride-ST rf_window): its
    // reader is at output p or later, so it has freed the input before (oy*ST, ox*ST), and its
    // line buffer (BUF_WORDS words = BUF_WORDS/CF pixels, rf_window's sizing) takes more.
    const long cf = C / SIMD, min_words = cf, extra = static_cast<long>(ST) * W * cf;
    long buf = 1;
    while (buf < min_words + extra) buf <<= 1;
    long rb = ST == 1 ? p : (oy * ST) * W + ox * ST + buf / cf;
    dmax = std::max(dmax, na - rb);
  }
  const long formula = std::max(1L, dmax * (C / SIMD) - 1);

  Conv c1{H, W, C, CO, 3, ST, PT1, ZX, {}, {}, {}, {}};
  Conv c2{OH, OW, CO, CO, 3, 1, 1, ZA, {}, {}, {}, {}};
  Conv sk{H, W, C, CO, 1, ST, 0, ZX, {}, {}, {}, {}};
  for (Conv* cv : {&c1, &c2, &sk}) {
    cv->wt.resize(static_cast<size_t>(cv->co) * cv->k * cv->k * cv->c);
    for (auto& v : cv->wt) v = static_cast<int>(rng.range(-127, 127));
    cv->b.resize(cv->co);
    for (auto& v : cv->b) v = rng.range(-5000, 5000);
  }
  std::vector<Vec> calib(4, Vec(static_cast<size_t>(H) * W * C));
  for (auto& x : calib) for (auto& v : x) v = rng.i8();
  calibrate(c1, calib, rng);
  std::vector<Vec> mid;
  for (auto& x : calib) mid.push_back(conv_q(c1, x, ZA, ZA));
  calibrate(c2, mid, rng);
  if (ST == 2) calibrate(sk, calib, rng);
  write_roms("c1", c1);
  write_roms("c2", c2);
  if (ST == 2) write_roms("sk", sk);

  long frames = args.frames > 0 ? args.frames : 12;
  const long full_speed = 4;
  std::vector<Vec> xs, ys;
  for (long f = 0; f < frames + full_speed; ++f) {
    Vec x(static_cast<size_t>(H) * W * C);
    for (auto& v : x) v = f == 0 ? -128 : f == 1 ? 127 : rng.i8();
    Vec a = conv_q(c2, conv_q(c1, x, ZA, ZA), ZA, -128);
    Vec b = ST == 1 ? x : conv_q(sk, x, ZA, -128);
    int z2 = ST == 1 ? ZX : ZA;
    Vec y(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      rf::i128 r1 = rf::rescale(static_cast<int64_t>(a[i] - ZA) << 20, M1, S1, KB, RND);
      rf::i128 r2 = rf::rescale(static_cast<int64_t>(b[i] - z2) << 20, M2, S2, KB, RND);
      y[i] = rf::clamp_i(rf::rescale(static_cast<int64_t>(r1 + r2), MO, SO, KB, RND) + ZOUT, ZOUT, 127);
    }
    xs.push_back(x);
    ys.push_back(y);
  }

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vtb_resblock>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) { dut->clk_i = 0; dut->eval(); dut->clk_i = 1; dut->eval(); }
  dut->rst_ni = 1;

  const long in_beats = static_cast<long>(H) * W * C / SIMD, out_beats = static_cast<long>(OH) * OW * CO / SIMD;
  long checked = 0;
  bool deadlock = false;
  double interval = 0;
  size_t next = 0;
  for (int phase = 0; phase < 2 && !deadlock; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0, stall = phase == 0 ? args.stall : 0.0;
    long nfr = phase == 0 ? frames : full_speed;
    rf::Source src;
    struct Exp { rf::Bits d; bool last; long frame, beat; };
    std::deque<Exp> expect;
    for (long f = 0; f < nfr; ++f, ++next) {
      for (long bt = 0; bt < in_beats; ++bt) {
        rf::Beat b;
        b.data = rf::Bits(SIMD * 8);
        for (int j = 0; j < SIMD; ++j) b.data.set(j * 8, 8, static_cast<uint8_t>(xs[next][static_cast<size_t>(bt) * SIMD + j]));
        b.last = bt == in_beats - 1;
        src.q.push_back(b);
      }
      for (long bt = 0; bt < out_beats; ++bt) {
        Exp e{rf::Bits(SIMD * 8), bt == out_beats - 1, static_cast<long>(next), bt};
        for (int j = 0; j < SIMD; ++j) e.d.set(j * 8, 8, static_cast<uint8_t>(ys[next][static_cast<size_t>(bt) * SIMD + j]));
        expect.push_back(e);
      }
    }
    rf::StreamRule rule;
    uint64_t cycle = 0, idle = 0;
    std::vector<uint64_t> ends;
    while (!expect.empty()) {
      dut->clk_i = 0;
      src.offer(rng, bubble);
      bool ready = !rng.chance(stall);
      dut->s_axis_tvalid = src.valid;
      if (src.valid) { rf::put(dut->s_axis_tdata, src.cur.data, SIMD * 8); dut->s_axis_tlast = src.cur.last; }
      dut->m_axis_tready = ready;
      dut->eval();
      bool sfire = src.valid && dut->s_axis_tready;
      rf::Bits got = rf::take(dut->m_axis_tdata, SIMD * 8);
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, 0);
      if (!err.empty()) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        const Exp& e = expect.front();
        for (int j = 0; j < SIMD; ++j) {
          ++checked;
          int g = static_cast<int8_t>(got.get(j * 8, 8)), x = static_cast<int8_t>(e.d.get(j * 8, 8));
          if (g != x) {
            long el = e.beat * SIMD + j;
            rep.fail("frame " + std::to_string(e.frame) + " output (" + std::to_string(el / CO / OW) + ", " +
                     std::to_string(el / CO % OW) + ", " + std::to_string(el % CO) + "): expected " + std::to_string(x) +
                     ", got " + std::to_string(g));
          }
        }
        if (static_cast<bool>(dut->m_axis_tlast) != e.last) rep.fail("tlast differs at frame " + std::to_string(e.frame));
        if (e.last) ends.push_back(cycle);
        expect.pop_front();
        idle = 0;
      } else if (++idle > 20000) {
        deadlock = true;
        std::printf("deadlock: no output beat for 20000 cycles; %ld input beats still queued, %zu output beats missing "
                    "(skip FIFO %d beats, formula %ld)\n", static_cast<long>(src.q.size()), expect.size(), DEPTH, formula);
        break;
      }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) src.valid = false;
    }
    if (phase == 1 && ends.size() >= 3)
      interval = static_cast<double>(ends.back() - ends[1]) / static_cast<double>(ends.size() - 2);
  }
  if (kExpectDeadlock) {
    if (!deadlock) rep.fail("expected a deadlock with a skip FIFO of " + std::to_string(DEPTH) + " beats, none happened");
    rep.errors = deadlock ? 0 : rep.errors;
  } else if (deadlock) {
    rep.fail("deadlock with a skip FIFO of " + std::to_string(DEPTH) + " beats (formula " + std::to_string(formula) + ")");
  }
  rep.checked = checked;
  char det[240];
  std::snprintf(det, sizeof det, "%ld elements checked; skip-FIFO formula %ld beats, configured %d; full speed interval %.1f cycles/block%s",
                checked, formula, DEPTH, interval, deadlock ? "; deadlock detected as expected" : "");
  return rep.finish(det);
}
