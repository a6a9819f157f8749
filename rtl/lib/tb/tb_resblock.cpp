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
#include "rf_conv_ref.h"
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

using rf::Vec;
using rf::Conv;

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

  Conv c1{H, W, C, CO, 3, ST, PT1, PB1, ZX, {}, {}, {}, {}};
  Conv c2{OH, OW, CO, CO, 3, 1, 1, 1, ZA, {}, {}, {}, {}};
  Conv sk{H, W, C, CO, 1, ST, 0, 0, ZX, {}, {}, {}, {}};
  for (Conv* cv : {&c1, &c2, &sk}) rf::random_conv(*cv, rng, 5000);
  std::vector<Vec> calib(4, Vec(static_cast<size_t>(H) * W * C));
  for (auto& x : calib) for (auto& v : x) v = rng.i8();
  rf::calibrate(c1, calib, rng, KB);
  std::vector<Vec> mid;
  for (auto& x : calib) mid.push_back(rf::conv_q(c1, x, ZA, ZA, KB, RND));
  rf::calibrate(c2, mid, rng, KB);
  if (ST == 2) rf::calibrate(sk, calib, rng, KB);
  rf::write_conv_roms("c1", c1, SIMD, PE, RQ, KB);
  rf::write_conv_roms("c2", c2, SIMD, PE, RQ, KB);
  if (ST == 2) rf::write_conv_roms("sk", sk, SIMD, PE, RQ, KB);

  long frames = args.frames > 0 ? args.frames : 12;
  const long full_speed = 4;
  std::vector<Vec> xs, ys;
  for (long f = 0; f < frames + full_speed; ++f) {
    Vec x(static_cast<size_t>(H) * W * C);
    for (auto& v : x) v = f == 0 ? -128 : f == 1 ? 127 : rng.i8();
    Vec a = rf::conv_q(c2, rf::conv_q(c1, x, ZA, ZA, KB, RND), ZA, -128, KB, RND);
    Vec b = ST == 1 ? x : rf::conv_q(sk, x, ZA, -128, KB, RND);
    int z2 = ST == 1 ? ZX : ZA;
    Vec y(a.size());
    for (size_t i = 0; i < a.size(); ++i) y[i] = rf::add_ref(a[i], ZA, b[i], z2, M1, S1, M2, S2, MO, SO, ZOUT, ZOUT, KB, RND);
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
