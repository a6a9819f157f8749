// ResNet-8 through tb_resnet8.v: random weights, per-channel (m, s) calibrated layer by layer,
// the network computed here with DESIGN section 5's conv2d / add / avg_pool2d / dense, every
// image's 10 logits and class compared with the RTL. Phase 1 runs at full speed and reports
// simulated cycles per image and Verilator's speed (CPU time of the loop); phase 2 adds random
// bubbles and stalls. Options: --frames N (images of phase 1, default 24), --seed S.
#include "Vtb_resnet8.h"
#include "rf_conv_ref.h"
#include "rf_tb.h"

#include <chrono>
#include <ctime>
#include <memory>

namespace {

#ifndef P_K_BITS
#define P_K_BITS 31
#endif
#ifndef P_SIMD
#define P_SIMD 16
#endif
#ifndef P_PE
#define P_PE 8
#endif
#ifndef P_RQ
#define P_RQ 2
#endif
constexpr int KB = P_K_BITS, SIMD = P_SIMD, PE = P_PE, RQ = P_RQ, RND = 1;
constexpr int ZX_IN = -3, ZA = -128, ZFC = 3;
constexpr uint64_t M1 = P_M1, M2 = P_M2, MO = P_MO;
constexpr int S1 = P_S1, S2 = P_S2, SO = P_SO;

using rf::Conv;
using rf::Vec;

struct Block {
  Conv c1, c2, sk;
  bool proj;
};

Vec block_fwd(const Block& b, const Vec& x) {
  Vec a = rf::conv_q(b.c2, rf::conv_q(b.c1, x, ZA, ZA, KB, RND), ZA, -128, KB, RND);
  Vec s = b.proj ? rf::conv_q(b.sk, x, ZA, -128, KB, RND) : x;
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) y[i] = rf::add_ref(a[i], ZA, s[i], ZA, M1, S1, M2, S2, MO, SO, ZA, ZA, KB, RND);
  return y;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  char nm[160];
  std::snprintf(nm, sizeof nm, "resnet8 k=%d blocks SIMD=%d PE=%d requant lanes %d", KB, SIMD, PE, RQ);
  rf::Report rep(nm, args.max_report);

  Conv c1{32, 32, 3, 16, 3, 1, 1, 1, ZX_IN, {}, {}, {}, {}};
  Block blk[3] = {
      {{32, 32, 16, 16, 3, 1, 1, 1, ZA, {}, {}, {}, {}}, {32, 32, 16, 16, 3, 1, 1, 1, ZA, {}, {}, {}, {}}, {}, false},
      {{32, 32, 16, 32, 3, 2, 0, 1, ZA, {}, {}, {}, {}}, {16, 16, 32, 32, 3, 1, 1, 1, ZA, {}, {}, {}, {}},
       {32, 32, 16, 32, 1, 2, 0, 0, ZA, {}, {}, {}, {}}, true},
      {{16, 16, 32, 64, 3, 2, 0, 1, ZA, {}, {}, {}, {}}, {8, 8, 64, 64, 3, 1, 1, 1, ZA, {}, {}, {}, {}},
       {16, 16, 32, 64, 1, 2, 0, 0, ZA, {}, {}, {}, {}}, true}};
  Conv fc{1, 1, 64, 10, 1, 1, 0, 0, ZA, {}, {}, {}, {}};
  rf::random_conv(c1, rng, 2000);
  for (auto& b : blk) {
    rf::random_conv(b.c1, rng, 5000);
    rf::random_conv(b.c2, rng, 5000);
    if (b.proj) rf::random_conv(b.sk, rng, 5000);
  }
  rf::random_conv(fc, rng, 20000);

  // Layer-by-layer calibration on a few random images.
  std::vector<Vec> cal(3, Vec(32 * 32 * 3));
  for (auto& x : cal) for (auto& v : x) v = rng.i8();
  rf::calibrate(c1, cal, rng, KB);
  for (auto& x : cal) x = rf::conv_q(c1, x, ZA, ZA, KB, RND);
  for (auto& b : blk) {
    rf::calibrate(b.c1, cal, rng, KB);
    std::vector<Vec> mid;
    for (auto& x : cal) mid.push_back(rf::conv_q(b.c1, x, ZA, ZA, KB, RND));
    rf::calibrate(b.c2, mid, rng, KB);
    if (b.proj) rf::calibrate(b.sk, cal, rng, KB);
    for (auto& x : cal) x = block_fwd(b, x);
  }
  auto pool = [](const Vec& y) {
    Vec p(64);
    for (int c = 0; c < 64; ++c) {
      int64_t s = 0;
      for (int i = 0; i < 64; ++i) s += y[static_cast<size_t>(i) * 64 + c];
      p[c] = static_cast<int>(s > 0 ? (s + 32) / 64 : (s - 32) / 64);
    }
    return p;
  };
  {
    std::vector<Vec> pooled;
    for (auto& x : cal) pooled.push_back(pool(x));
    rf::calibrate(fc, pooled, rng, KB);
  }
  rf::write_conv_roms("c1", c1, 3, 16, RQ, KB);
  for (int i = 0; i < 3; ++i) {
    std::string b = "b" + std::to_string(i + 1);
    rf::write_conv_roms(b + "c1", blk[i].c1, SIMD, PE, RQ, KB);
    rf::write_conv_roms(b + "c2", blk[i].c2, SIMD, PE, RQ, KB);
    if (blk[i].proj) rf::write_conv_roms(b + "sk", blk[i].sk, SIMD, PE, RQ, KB);
  }
  rf::write_conv_roms("fc", fc, 1, 10, 2, KB);

  long n_fast = args.frames > 0 ? args.frames : 24;
  long n_slow = std::max<long>(4, n_fast / 6);
  std::vector<Vec> xs, ys;
  std::vector<int> cls;
  for (long i = 0; i < n_fast + n_slow; ++i) {
    Vec x(32 * 32 * 3);
    for (auto& v : x) v = rng.i8();
    Vec h = rf::conv_q(c1, x, ZA, ZA, KB, RND);
    for (auto& b : blk) h = block_fwd(b, h);
    Vec y = rf::conv_q(fc, pool(h), ZFC, -128, KB, 0);  // dense: single rounding (TFLite ref)
    int best = 0;
    for (int j = 1; j < 10; ++j) if (y[j] > y[best]) best = j;
    xs.push_back(x);
    ys.push_back(y);
    cls.push_back(best);
  }

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vtb_resnet8>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) { dut->clk_i = 0; dut->eval(); dut->clk_i = 1; dut->eval(); }
  dut->rst_ni = 1;

  size_t next = 0;
  long images_checked = 0;
  double fast_cpu = 0, fast_wall = 0, interval = 0;
  uint64_t fast_cycles = 0, first = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? 0.0 : args.bubble, stall = phase == 0 ? 0.0 : args.stall;
    long n = phase == 0 ? n_fast : n_slow;
    size_t base = next, in_img = next, in_pos = 0, out_img = next;
    int out_beat = 0;
    bool valid = false;
    uint32_t cur = 0;
    bool cur_last = false;
    uint64_t cycle = 0, idle = 0;
    std::vector<uint64_t> done_at;
    rf::StreamRule rule;
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();
    while (out_img < base + static_cast<size_t>(n)) {
      dut->clk_i = 0;
      if (!valid && in_img < base + static_cast<size_t>(n) && !rng.chance(bubble)) {
        const Vec& x = xs[in_img];
        cur = static_cast<uint32_t>(static_cast<uint8_t>(x[in_pos * 3])) |
              (static_cast<uint32_t>(static_cast<uint8_t>(x[in_pos * 3 + 1])) << 8) |
              (static_cast<uint32_t>(static_cast<uint8_t>(x[in_pos * 3 + 2])) << 16);
        cur_last = in_pos == 1023;
        valid = true;
      }
      bool ready = !rng.chance(stall);
      dut->s_axis_tvalid = valid;
      dut->s_axis_tdata = cur;
      dut->s_axis_tlast = cur_last;
      dut->m_axis_tready = ready;
      dut->eval();
      bool sfire = valid && dut->s_axis_tready;
      if (phase == 1) {
        rf::Bits got = rf::take(dut->m_axis_tdata, 16);
        std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, dut->m_axis_tuser);
        if (!err.empty()) rep.fail("output stream rule: " + err);
      }
      if (dut->m_axis_tvalid && ready) {
        uint32_t got = dut->m_axis_tdata;
        if (out_beat < 5) {
          for (int l = 0; l < 2; ++l) {
            int j = out_beat * 2 + l;
            int g = static_cast<int8_t>((got >> (8 * l)) & 0xff);
            if (g != ys[out_img][j])
              rep.fail("image " + std::to_string(out_img) + " logit " + std::to_string(j) + ": expected " +
                       std::to_string(ys[out_img][j]) + ", got " + std::to_string(g));
          }
          ++out_beat;
        } else {
          if (static_cast<int>(got & 0xff) != cls[out_img] || !dut->m_axis_tuser || !dut->m_axis_tlast)
            rep.fail("image " + std::to_string(out_img) + " class: expected " + std::to_string(cls[out_img]) + ", got " +
                     std::to_string(got & 0xff));
          done_at.push_back(cycle);
          ++images_checked;
          ++out_img;
          out_beat = 0;
        }
        idle = 0;
      } else if (++idle > 400000) {
        rep.fail("deadlock: no output for 400000 cycles (image " + std::to_string(out_img) + ")");
        break;
      }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) {
        valid = false;
        if (++in_pos == 1024) {
          in_pos = 0;
          ++in_img;
        }
      }
    }
    next = base + static_cast<size_t>(n);
    if (phase == 0) {
      fast_wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      fast_cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
      fast_cycles = cycle;
      if (!done_at.empty()) first = done_at.front();
      if (done_at.size() > 3)
        interval = static_cast<double>(done_at.back() - done_at[1]) / static_cast<double>(done_at.size() - 2);
    }
  }
  rep.checked = images_checked;
  char det[400];
  std::snprintf(det, sizeof det,
                "%ld images bit-exact (%ld at full speed, %ld with bubbles/stalls); full speed: %llu cycles, interval "
                "%.1f cycles/image, first image after %llu cycles; Verilator %.2f M cycles/s, %.1f images/s (CPU time; "
                "wall clock %.1f images/s)",
                images_checked, n_fast, n_slow, static_cast<unsigned long long>(fast_cycles), interval,
                static_cast<unsigned long long>(first), fast_cycles / fast_cpu / 1e6, n_fast / fast_cpu, n_fast / fast_wall);
  return rep.finish(det);
}
