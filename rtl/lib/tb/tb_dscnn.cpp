// DS-CNN through tb_dscnn.v: random weights and biases, per-channel (m, s) calibrated layer by
// layer from the accumulator spread of calibration inputs (outputs span the int8 range), the
// whole network computed here with DESIGN section 5's formulas (128-bit rescale), and every
// image's 12 logits and class compared with the RTL's output. Phase 1 runs at full speed and
// measures simulated cycles per image and Verilator's wall-clock speed (the loop only: the
// reference model is computed before it); phase 2 adds random bubbles and stalls.
// Options: --frames N (images of phase 1, default 200), --seed S.
#include "Vtb_dscnn.h"
#ifdef RF_PROBE  // utilisation of each engine (debug builds: -CFLAGS -DRF_PROBE)
#include "Vtb_dscnn___024root.h"
#endif
#include "rf_ref.h"
#include "rf_tb.h"

#include <chrono>
#include <ctime>
#include <cmath>
#include <memory>

namespace {

#ifndef P_K_BITS
#define P_K_BITS 31
#endif
#ifndef P_C1_PE
#define P_C1_PE 64
#endif
#ifndef P_DW_SIMD
#define P_DW_SIMD 16
#endif
#ifndef P_PW_SIMD
#define P_PW_SIMD 16
#endif
#ifndef P_PW_PE
#define P_PW_PE 8
#endif
#ifndef P_FC_SIMD
#define P_FC_SIMD 16
#endif
#ifndef P_C1_RQ
#define P_C1_RQ 2
#endif
#ifndef P_DW_RQ
#define P_DW_RQ 2
#endif
#ifndef P_PW_RQ
#define P_PW_RQ 2
#endif
#ifndef P_FC_RQ
#define P_FC_RQ 2
#endif
constexpr int KB = P_K_BITS, C1_PE = P_C1_PE, DW_SIMD = P_DW_SIMD, PW_SIMD = P_PW_SIMD, PW_PE = P_PW_PE;
constexpr int FC_SIMD = P_FC_SIMD;
constexpr int C1_RQ = P_C1_RQ, DW_RQ = P_DW_RQ, PW_RQ = P_PW_RQ, FC_RQ = P_FC_RQ;
constexpr int OUT_BITS = FC_RQ * 8, LOGIT_BEATS = 12 / FC_RQ;
constexpr int ZX_IN = 83, ZA = -128, ZFC = 3;
constexpr int RND_CONV = 1, RND_FC = 0;

using Vec = std::vector<int>;

struct Layer {  // weights in TFLite layouts, bias, per-channel (m, s)
  Vec w;
  std::vector<int64_t> b;
  std::vector<uint64_t> m;
  std::vector<int> s;
};

// conv2d, NHWC / OHWI; returns accumulators [OH][OW][O].
std::vector<int64_t> conv(const Vec& x, int H, int W, int C, const Layer& L, int O, int KH, int KW, int S, int PT,
                          int PL, int OH, int OW, int zx) {
  std::vector<int64_t> a(static_cast<size_t>(OH) * OW * O);
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < OW; ++ox)
      for (int o = 0; o < O; ++o) {
        int64_t acc = L.b[o];
        for (int ky = 0; ky < KH; ++ky)
          for (int kx = 0; kx < KW; ++kx) {
            int iy = oy * S - PT + ky, ix = ox * S - PL + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            for (int c = 0; c < C; ++c)
              acc += static_cast<int64_t>(x[(static_cast<size_t>(iy) * W + ix) * C + c] - zx) *
                     L.w[((static_cast<size_t>(o) * KH + ky) * KW + kx) * C + c];
          }
        a[(static_cast<size_t>(oy) * OW + ox) * O + o] = acc;
      }
  return a;
}

// depthwise 3x3 s1 pad 1, DM = 1; weights [KH][KW][C].
std::vector<int64_t> dwconv(const Vec& x, int H, int W, int C, const Layer& L, int zx) {
  std::vector<int64_t> a(static_cast<size_t>(H) * W * C);
  for (int oy = 0; oy < H; ++oy)
    for (int ox = 0; ox < W; ++ox)
      for (int c = 0; c < C; ++c) {
        int64_t acc = L.b[c];
        for (int ky = 0; ky < 3; ++ky)
          for (int kx = 0; kx < 3; ++kx) {
            int iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            acc += static_cast<int64_t>(x[(static_cast<size_t>(iy) * W + ix) * C + c] - zx) * L.w[(ky * 3 + kx) * C + c];
          }
        a[(static_cast<size_t>(oy) * W + ox) * C + c] = acc;
      }
  return a;
}

Vec requant(const std::vector<int64_t>& a, int O, const Layer& L, int rnd, int zy, int lo) {
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    int o = static_cast<int>(i % O);
    y[i] = rf::clamp_i(rf::rescale(a[i], L.m[o], L.s[o], KB, rnd) + zy, lo, 127);
  }
  return y;
}

void calibrate(Layer& L, const std::vector<std::vector<int64_t>>& accs, int O, rf::Rng& rng) {
  L.m.assign(O, 0);
  L.s.assign(O, 0);
  for (int o = 0; o < O; ++o) {
    double sum = 0, sq = 0;
    long n = 0;
    for (auto& a : accs)
      for (size_t i = static_cast<size_t>(o); i < a.size(); i += O) {
        sum += static_cast<double>(a[i]);
        sq += static_cast<double>(a[i]) * static_cast<double>(a[i]);
        ++n;
      }
    double sd = std::sqrt(std::max(0.0, sq / n - (sum / n) * (sum / n)));
    double M = 50.0 / (sd + 1.0) * std::exp(static_cast<double>(rng.range(-30, 30)) / 100.0);
    int e;
    double f = std::frexp(M, &e);
    uint64_t m = static_cast<uint64_t>(std::llround(f * std::ldexp(1.0, KB)));
    if (m == (1ULL << KB)) {
      m >>= 1;
      ++e;
    }
    int s = KB - e;
    if (s > 62 || s < KB) {  // keep M < 1 (double rounding needs s >= k)
      m = 0;
      s = 0;
    }
    L.m[o] = m;
    L.s[o] = s;
  }
}

void write_mac(const std::string& name, const Layer& L, int K, int O, int SIMD, int PE, int zx) {
  std::vector<rf::Bits> ww, bw;
  int SF = K / SIMD, NF = O / PE;
  for (int nf = 0; nf < NF; ++nf) {
    for (int sf = 0; sf < SF; ++sf) {
      rf::Bits word(PE * SIMD * 8);
      for (int p = 0; p < PE; ++p)
        for (int s = 0; s < SIMD; ++s)
          word.set((p * SIMD + s) * 8, 8, static_cast<uint8_t>(L.w[static_cast<size_t>(nf * PE + p) * K + sf * SIMD + s]));
      ww.push_back(word);
    }
    rf::Bits b(PE * 32);
    for (int p = 0; p < PE; ++p) {
      int o = nf * PE + p;
      int64_t sw = 0;
      for (int i = 0; i < K; ++i) sw += L.w[static_cast<size_t>(o) * K + i];
      b.set(p * 32, 32, static_cast<uint64_t>(L.b[o] - static_cast<int64_t>(zx) * sw));  // FOLD_ZX = 1
    }
    bw.push_back(b);
  }
  rf::write_hex(name + "_w.hex", ww, PE * SIMD * 8);
  rf::write_hex(name + "_b.hex", bw, PE * 32);
}

void write_dw(const std::string& name, const Layer& L, int C, int SIMD, int zx) {
  std::vector<rf::Bits> ww, bw;
  for (int cf = 0; cf < C / SIMD; ++cf) {
    for (int t = 0; t < 9; ++t) {
      rf::Bits word(SIMD * 8);
      for (int j = 0; j < SIMD; ++j) word.set(j * 8, 8, static_cast<uint8_t>(L.w[t * C + cf * SIMD + j]));
      ww.push_back(word);
    }
    rf::Bits b(SIMD * 32);
    for (int j = 0; j < SIMD; ++j) {
      int c = cf * SIMD + j;
      int64_t sw = 0;
      for (int t = 0; t < 9; ++t) sw += L.w[t * C + c];
      b.set(j * 32, 32, static_cast<uint64_t>(L.b[c] - static_cast<int64_t>(zx) * sw));
    }
    bw.push_back(b);
  }
  rf::write_hex(name + "_w.hex", ww, SIMD * 8);
  rf::write_hex(name + "_b.hex", bw, SIMD * 32);
}

void write_rq(const std::string& name, const Layer& L, int lanes, int CH) {
  const int EW = KB + 6;
  std::vector<rf::Bits> words;
  for (int g = 0; g < CH / lanes; ++g) {
    rf::Bits w(lanes * EW);
    for (int l = 0; l < lanes; ++l) {
      w.set(l * EW, KB, L.m[g * lanes + l]);
      w.set(l * EW + KB, 6, static_cast<uint64_t>(L.s[g * lanes + l]));
    }
    words.push_back(w);
  }
  rf::write_hex(name + "_rq.hex", words, lanes * EW);
}

Layer random_layer(rf::Rng& rng, size_t nw, int O, int bias) {
  Layer L;
  L.w.resize(nw);
  for (auto& v : L.w) v = static_cast<int>(rng.range(-127, 127));
  L.b.resize(O);
  for (auto& v : L.b) v = rng.range(-bias, bias);
  return L;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  char nm[160];
  std::snprintf(nm, sizeof nm, "dscnn k=%d conv1 PE=%d dw SIMD=%d pw SIMD=%d PE=%d fc SIMD=%d, requant lanes %d/%d/%d/%d", KB,
                C1_PE, DW_SIMD, PW_SIMD, PW_PE, FC_SIMD, C1_RQ, DW_RQ, PW_RQ, FC_RQ);
  rf::Report rep(nm, args.max_report);

  // Network and calibration.
  Layer c1 = random_layer(rng, 64 * 40, 64, 5000);
  Layer dw[4], pw[4];
  for (int i = 0; i < 4; ++i) {
    dw[i] = random_layer(rng, 9 * 64, 64, 3000);
    pw[i] = random_layer(rng, 64 * 64, 64, 20000);
  }
  Layer fc = random_layer(rng, 12 * 64, 12, 20000);
  std::vector<Vec> calib(6);
  for (auto& x : calib) {
    x.resize(490);
    for (auto& v : x) v = rng.i8();
  }
  auto run_layers = [&](const Vec& x, bool cal_stage, int stage, std::vector<std::vector<int64_t>>* acc_out) -> Vec {
    // Forward up to `stage` (0 = conv1, 1..8 = dw0 pw0 ... dw3 pw3, 9 = fc); returns logits when complete.
    std::vector<int64_t> a = conv(x, 49, 10, 1, c1, 64, 10, 4, 2, 4, 1, 25, 5, ZX_IN);
    if (cal_stage && stage == 0) { acc_out->push_back(a); return {}; }
    Vec y = requant(a, 64, c1, RND_CONV, ZA, ZA);
    for (int i = 0; i < 4; ++i) {
      a = dwconv(y, 25, 5, 64, dw[i], ZA);
      if (cal_stage && stage == 1 + 2 * i) { acc_out->push_back(a); return {}; }
      y = requant(a, 64, dw[i], RND_CONV, ZA, ZA);
      a = conv(y, 25, 5, 64, pw[i], 64, 1, 1, 1, 0, 0, 25, 5, ZA);
      if (cal_stage && stage == 2 + 2 * i) { acc_out->push_back(a); return {}; }
      y = requant(a, 64, pw[i], RND_CONV, ZA, ZA);
    }
    Vec pooled(64);
    for (int c = 0; c < 64; ++c) {
      int64_t s = 0;
      for (int p = 0; p < 125; ++p) s += y[static_cast<size_t>(p) * 64 + c];
      int64_t v = s > 0 ? (s + 62) / 125 : (s - 62) / 125;
      pooled[c] = static_cast<int>(v);
    }
    a = conv(pooled, 1, 1, 64, fc, 12, 1, 1, 1, 0, 0, 1, 1, ZA);
    if (cal_stage && stage == 9) { acc_out->push_back(a); return {}; }
    return requant(a, 12, fc, RND_FC, ZFC, -128);
  };
  for (int stage = 0; stage <= 9; ++stage) {
    std::vector<std::vector<int64_t>> accs;
    for (auto& x : calib) run_layers(x, true, stage, &accs);
    Layer& L = stage == 0 ? c1 : stage == 9 ? fc : (stage % 2 == 1 ? dw[(stage - 1) / 2] : pw[(stage - 2) / 2]);
    calibrate(L, accs, stage == 9 ? 12 : 64, rng);
  }
  write_mac("c1", c1, 40, 64, 1, C1_PE, ZX_IN);
  write_rq("c1", c1, C1_RQ, 64);
  for (int i = 0; i < 4; ++i) {
    write_dw("dw" + std::to_string(i), dw[i], 64, DW_SIMD, ZA);
    write_rq("dw" + std::to_string(i), dw[i], DW_RQ, 64);
    write_mac("pw" + std::to_string(i), pw[i], 64, 64, PW_SIMD, PW_PE, ZA);
    write_rq("pw" + std::to_string(i), pw[i], PW_RQ, 64);
  }
  write_mac("fc", fc, 64, 12, FC_SIMD, 12, ZA);
  write_rq("fc", fc, FC_RQ, 12);

  long n_fast = args.frames > 0 ? args.frames : 200;
  long n_slow = std::max<long>(8, n_fast / 10);
  std::vector<Vec> xs;
  std::vector<Vec> ys;
  std::vector<int> cls;
  for (long i = 0; i < n_fast + n_slow; ++i) {
    Vec x(490);
    for (auto& v : x) v = rng.i8();
    Vec y = run_layers(x, false, -1, nullptr);
    int best = 0;
    for (int j = 1; j < 12; ++j) if (y[j] > y[best]) best = j;
    xs.push_back(x);
    ys.push_back(y);
    cls.push_back(best);
  }

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vtb_dscnn>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) { dut->clk_i = 0; dut->eval(); dut->clk_i = 1; dut->eval(); }
  dut->rst_ni = 1;

  size_t next = 0;
  double fast_wall = 0, fast_cpu = 0;
  uint64_t fast_cycles = 0, first_lat = 0;
  double interval = 0;
  long images_checked = 0;
#ifdef RF_PROBE
  uint64_t probe[8] = {};
#endif
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? 0.0 : args.bubble, stall = phase == 0 ? 0.0 : args.stall;
    long n = phase == 0 ? n_fast : n_slow;
    size_t base = next;
    size_t in_img = next, in_pos = 0;
    size_t out_img = next;
    int out_beat = 0;
    bool valid = false;
    int cur = 0;
    bool cur_last = false;
    uint64_t cycle = 0, idle = 0;
    std::vector<uint64_t> done_at;
    rf::StreamRule rule;
    auto t0 = std::chrono::steady_clock::now();
    std::clock_t c0 = std::clock();
    while (out_img < base + static_cast<size_t>(n)) {
      dut->clk_i = 0;
      if (!valid && in_img < base + static_cast<size_t>(n) && !rng.chance(bubble)) {
        cur = xs[in_img][in_pos];
        cur_last = in_pos == 489;
        valid = true;
      }
      bool ready = !rng.chance(stall);
      dut->s_axis_tvalid = valid;
      dut->s_axis_tdata = static_cast<uint8_t>(cur);
      dut->s_axis_tlast = cur_last;
      dut->m_axis_tready = ready;
      dut->eval();
      bool sfire = valid && dut->s_axis_tready;
      if (phase == 1) {
        rf::Bits got = rf::take(dut->m_axis_tdata, OUT_BITS);
        std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, dut->m_axis_tuser);
        if (!err.empty()) rep.fail("output stream rule: " + err);
      }
      if (dut->m_axis_tvalid && ready) {
        rf::Bits got = rf::take(dut->m_axis_tdata, OUT_BITS);
        if (out_beat < LOGIT_BEATS) {
          for (int l = 0; l < FC_RQ; ++l) {
            int j = out_beat * FC_RQ + l;
            int g = static_cast<int8_t>(got.get(l * 8, 8));
            if (g != ys[out_img][j])
              rep.fail("image " + std::to_string(out_img) + " logit " + std::to_string(j) + ": expected " +
                       std::to_string(ys[out_img][j]) + ", got " + std::to_string(g));
          }
          if (dut->m_axis_tuser || dut->m_axis_tlast) rep.fail("image " + std::to_string(out_img) + ": logits beat flagged as class");
          ++out_beat;
        } else {
          int g = static_cast<int>(got.get(0, OUT_BITS < 8 ? OUT_BITS : 8));
          if (g != cls[out_img] || !dut->m_axis_tuser || !dut->m_axis_tlast)
            rep.fail("image " + std::to_string(out_img) + " class: expected " + std::to_string(cls[out_img]) + ", got " +
                     std::to_string(g));
          done_at.push_back(cycle);
          ++images_checked;
          ++out_img;
          out_beat = 0;
        }
        idle = 0;
      } else if (++idle > args.idle_limit) {
        rep.fail("deadlock: no output for " + std::to_string(args.idle_limit) + " cycles (image " + std::to_string(out_img) + ")");
        break;
      }
#ifdef RF_PROBE
      if (phase == 0) {
        auto* r = dut->rootp;
        probe[0] += r->tb_dscnn__DOT__u_c1_mac__DOT__v1_q;
        probe[1] += r->tb_dscnn__DOT__g_blk__BRA__0__KET____DOT__u_dw__DOT__v1_q;
        probe[2] += r->tb_dscnn__DOT__g_blk__BRA__0__KET____DOT__u_pw__DOT__v1_q;
        probe[3] += r->tb_dscnn__DOT__g_blk__BRA__3__KET____DOT__u_dw__DOT__v1_q;
        probe[4] += r->tb_dscnn__DOT__g_blk__BRA__3__KET____DOT__u_pw__DOT__v1_q;
        probe[5] += r->tb_dscnn__DOT__u_c1_win__DOT__v1_q;
        probe[6] += r->tb_dscnn__DOT__g_blk__BRA__0__KET____DOT__u_win__DOT__v1_q;
        probe[7] += r->tb_dscnn__DOT__u_pool_win__DOT__v1_q;
      }
#endif
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) {
        valid = false;
        if (++in_pos == 490) {
          in_pos = 0;
          ++in_img;
        }
      }
    }
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    next = base + static_cast<size_t>(n);
    if (phase == 0) {
      fast_wall = wall;
      fast_cpu = cpu;
      fast_cycles = cycle;
      if (!done_at.empty()) first_lat = done_at.front();
      if (done_at.size() > 4)
        interval = static_cast<double>(done_at.back() - done_at[2]) / static_cast<double>(done_at.size() - 3);
    }
  }
  rep.checked = images_checked;
#ifdef RF_PROBE
  static const char* kProbe[8] = {"conv1 MAC", "dw0 MAC", "pw0 MAC", "dw3 MAC", "pw3 MAC", "conv1 window", "dw0 window", "pool window"};
  for (int i = 0; i < 8; ++i)
    std::printf("probe: %-12s busy %.1f cycles/image (%.0f%%)\n", kProbe[i], static_cast<double>(probe[i]) / n_fast,
                100.0 * static_cast<double>(probe[i]) / static_cast<double>(fast_cycles));
#endif
  char det[400];
  std::snprintf(det, sizeof det,
                "%ld images bit-exact (%ld at full speed, %ld with bubbles/stalls); full speed: %llu cycles, "
                "interval %.1f cycles/image, first image after %llu cycles; Verilator %.2f M cycles/s, %.1f images/s "
                "(CPU time; wall clock %.1f images/s)",
                images_checked, n_fast, n_slow, static_cast<unsigned long long>(fast_cycles), interval,
                static_cast<unsigned long long>(first_lat), fast_cycles / fast_cpu / 1e6, n_fast / fast_cpu,
                n_fast / fast_wall);
  return rep.finish(det);
}
