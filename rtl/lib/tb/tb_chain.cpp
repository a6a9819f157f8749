// Op-level test through tb_chain.v (rf_window -> engine [-> rf_requant]): one DESIGN section 5
// op (conv2d, depthwise_conv2d, avg_pool2d, max_pool2d) computed here from the section's
// formulas on random tensors (with frames of all -128, all 127 and all Z_x) and random weights,
// biases and per-channel (m, s) (derived from each channel's accumulator spread so that
// outputs span the int8 range, with some m = 0 channels), compared element by element under
// random bubbles and stalls; at full speed the interval and latency are reported.
#include "Vtb_chain.h"
#include "rf_ref.h"
#include "rf_tb.h"

#include <algorithm>
#include <cmath>
#include <memory>

namespace {

constexpr int OP = P_OP;
constexpr int H = P_H, W = P_W, C = P_C, KH = P_KH, KW = P_KW, SH = P_SH, SW = P_SW;
constexpr int DH = P_DH, DW = P_DW, PT = P_PT, PB = P_PB, PL = P_PL, PR = P_PR;
constexpr int SIMD = P_SIMD;
#ifdef P_PE
constexpr int PE = P_PE;
#else
constexpr int PE = 1;
#endif
#ifdef P_O
constexpr int O_CONV = P_O;
#else
constexpr int O_CONV = 1;
#endif
#ifdef P_DM
constexpr int DM = P_DM;
#else
constexpr int DM = 1;
#endif
#ifdef P_ZX
constexpr int ZX = P_ZX;
#else
constexpr int ZX = 0;
#endif
#ifdef P_FOLD_ZX
constexpr int FOLD = P_FOLD_ZX;
#else
constexpr int FOLD = 0;
#endif
#ifdef P_ACC_BITS
constexpr int ACC = P_ACC_BITS;
#else
constexpr int ACC = 32;
#endif
#ifdef P_K_BITS
constexpr int KB = P_K_BITS;
#else
constexpr int KB = 31;
#endif
#ifdef P_ROUNDING
constexpr int RND = P_ROUNDING;
#else
constexpr int RND = 0;
#endif
#ifdef P_FORM
constexpr int FORM = P_FORM;
#else
constexpr int FORM = 2;
#endif
#ifdef P_DIGITS
constexpr int DIGITS = P_DIGITS;
#else
constexpr int DIGITS = 1;
#endif
#ifdef P_ZY
constexpr int ZY = P_ZY;
#else
constexpr int ZY = 0;
#endif
#ifdef P_LO
constexpr int LO = P_LO;
#else
constexpr int LO = -128;
#endif
#ifdef P_HI
constexpr int HI = P_HI;
#else
constexpr int HI = 127;
#endif

static_assert(FORM >= 2, "the chain harness derives per-channel (m, s): use FORM 2 or 3");

constexpr int OH = (H + PT + PB - (KH - 1) * DH - 1) / SH + 1;
constexpr int OW = (W + PL + PR - (KW - 1) * DW - 1) / SW + 1;
constexpr int OC = OP == 0 ? O_CONV : OP == 1 ? C * DM : C;
constexpr int OL = OP == 0 ? PE : OP == 1 ? SIMD * DM : SIMD;
constexpr int EL = OP == 0 ? PE : SIMD * DM;
constexpr int KK = KH * KW;
constexpr int KDOT = KK * C;
constexpr int CF = C / SIMD;

using Tensor = std::vector<int8_t>;  // [H][W][C]

// Accumulators (conv / dw) or int8 results (pools) of one frame, [OH][OW][OC].
std::vector<int64_t> compute(const Tensor& x, const std::vector<int>& w, const std::vector<int64_t>& b) {
  std::vector<int64_t> out(static_cast<size_t>(OH) * OW * OC);
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < OW; ++ox)
      for (int o = 0; o < OC; ++o) {
        int64_t acc = (OP <= 1) ? b[o] : 0;
        int n = 0;
        int mx = -128;
        for (int ky = 0; ky < KH; ++ky)
          for (int kx = 0; kx < KW; ++kx) {
            int iy = oy * SH - PT + ky * DH, ix = ox * SW - PL + kx * DW;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;  // padding taps are skipped
            const int8_t* px = &x[(static_cast<size_t>(iy) * W + ix) * C];
            if (OP == 0) {
              for (int c = 0; c < C; ++c)
                acc += static_cast<int64_t>(px[c] - ZX) * w[((static_cast<size_t>(o) * KH + ky) * KW + kx) * C + c];
            } else if (OP == 1) {
              acc += static_cast<int64_t>(px[o / DM] - ZX) * w[(static_cast<size_t>(ky) * KW + kx) * OC + o];
            } else {
              acc += px[o];
              ++n;
              mx = std::max<int>(mx, px[o]);
            }
          }
        int64_t r;
        if (OP <= 1) r = acc;
        else if (OP == 2) {
          int64_t v = n == 0 ? 0 : acc > 0 ? (acc + n / 2) / n : (acc - n / 2) / n;  // C++ truncates
          r = std::clamp<int64_t>(v, LO, HI);
        } else {
          r = std::clamp<int64_t>(mx, LO, HI);
        }
        out[(static_cast<size_t>(oy) * OW + ox) * OC + o] = r;
      }
  return out;
}

struct Chan {
  uint64_t m;
  int s;
};

// (m, s) at KB bits from a real M (DESIGN section 1), reduced to DIGITS NAF digits for FORM 3.
Chan derive(double M) {
  if (!(M > 0)) return {0, 0};
  int e;
  double f = std::frexp(M, &e);
  uint64_t m = static_cast<uint64_t>(std::llround(f * std::ldexp(1.0, KB)));
  if (m == (1ULL << KB)) {
    m >>= 1;
    e += 1;
  }
  int s = KB - e;
  if (s > 62) return {0, 0};
  if (s < 0) rf::die("derived shift < 0");
  if (FORM == 3) {
    auto d = rf::naf(m);
    while (static_cast<int>(d.size()) > DIGITS) d.erase(d.begin());  // drop the lowest digits
    int64_t v = 0;
    for (auto& g : d) v += (g.neg ? -1 : 1) * (static_cast<int64_t>(1) << g.pos);
    m = static_cast<uint64_t>(v);
    if (m >= (1ULL << KB)) m = (1ULL << KB) - 1;  // cannot happen for a NAF prefix, kept safe
    if (static_cast<int>(rf::naf(m).size()) > DIGITS) rf::die("digit projection failed");
  }
  return {m, s};
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  static const char* kOpName[] = {"conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d"};
  char nm[256];
  std::snprintf(nm, sizeof nm, "%s %dx%dx%d->%dx%dx%d k%dx%d s%dx%d d%dx%d pad%d,%d,%d,%d SIMD=%d PE=%d k=%d %s FORM=%d",
                kOpName[OP], H, W, C, OH, OW, OC, KH, KW, SH, SW, DH, DW, PT, PB, PL, PR, SIMD, OP == 1 ? SIMD * DM : PE, KB,
                RND ? "double" : "single", FORM);
  rf::Report rep(nm, args.max_report);

  // Parameters.
  std::vector<int> w;
  std::vector<int64_t> b(OC, 0);
  if (OP == 0) w.resize(static_cast<size_t>(OC) * KDOT);
  if (OP == 1) w.resize(static_cast<size_t>(KK) * OC);
  for (auto& v : w) v = rng.chance(0.05) ? (rng.chance(0.5) ? 127 : -127) : static_cast<int>(rng.range(-127, 127));
  if (OP <= 1)
    for (auto& v : b) v = rng.range(-20000, 20000);

  // Inputs: every frame generated up front (the ROM scales depend on the accumulator spread).
  long frames = args.frames > 0 ? args.frames
                                : std::max<long>(4, std::min<long>(60, 150000 / (static_cast<long>(OH) * OW * OC * KK + 1)));
  const long full_speed_frames = 4;
  std::vector<Tensor> xs;
  for (long f = 0; f < frames + full_speed_frames; ++f) {
    Tensor x(static_cast<size_t>(H) * W * C);
    int kind = f < 3 ? static_cast<int>(f) : 3;
    for (auto& v : x) v = kind == 0 ? -128 : kind == 1 ? 127 : kind == 2 ? static_cast<int8_t>(ZX) : rng.i8();
    xs.push_back(x);
  }
  std::vector<std::vector<int64_t>> raw;
  for (auto& x : xs) raw.push_back(compute(x, w, b));

  std::vector<Chan> ch(OC, Chan{0, 0});
  if (OP <= 1) {
    for (int o = 0; o < OC; ++o) {
      double sum = 0, sq = 0;
      long cnt = 0;
      for (size_t f = 3; f < raw.size(); ++f)
        for (size_t i = static_cast<size_t>(o); i < raw[f].size(); i += OC) {
          double a = static_cast<double>(raw[f][i]);
          sum += a;
          sq += a * a;
          ++cnt;
        }
      double sd = cnt > 1 ? std::sqrt(std::max(0.0, sq / cnt - (sum / cnt) * (sum / cnt))) : 1.0;
      double M = 40.0 / (sd + 1.0) * std::exp(rng.range(-50, 50) / 100.0);
      ch[o] = rng.chance(0.08) ? Chan{0, static_cast<int>(rng.range(0, RND ? KB - 1 : 20))} : derive(M);
      if (RND == 1 && ch[o].m > 0 && ch[o].s < KB) ch[o] = {0, 0};
    }
    // ROM images.
    std::vector<rf::Bits> ww, bw, rw;
    if (OP == 0) {
      const int SF = KDOT / SIMD, NF = OC / PE;
      for (int nf = 0; nf < NF; ++nf) {
        for (int sf = 0; sf < SF; ++sf) {
          rf::Bits word(PE * SIMD * 8);
          for (int p = 0; p < PE; ++p)
            for (int s = 0; s < SIMD; ++s)
              word.set((p * SIMD + s) * 8, 8, static_cast<uint8_t>(w[static_cast<size_t>(nf * PE + p) * KDOT + sf * SIMD + s]));
          ww.push_back(word);
        }
      }
    } else {
      for (int cf = 0; cf < CF; ++cf)
        for (int t = 0; t < KK; ++t) {
          rf::Bits word(EL * 8);
          for (int l = 0; l < EL; ++l) word.set(l * 8, 8, static_cast<uint8_t>(w[static_cast<size_t>(t) * OC + cf * EL + l]));
          ww.push_back(word);
        }
    }
    for (int g = 0; g < OC / EL; ++g) {
      rf::Bits word(EL * ACC);
      for (int l = 0; l < EL; ++l) {
        int o = g * EL + l;
        int64_t bv = b[o];
        if (FOLD) {
          int64_t sw = 0;
          if (OP == 0)
            for (int i = 0; i < KDOT; ++i) sw += w[static_cast<size_t>(o) * KDOT + i];
          else
            for (int t = 0; t < KK; ++t) sw += w[static_cast<size_t>(t) * OC + o];
          bv -= static_cast<int64_t>(ZX) * sw;
        }
        word.set(l * ACC, ACC, static_cast<uint64_t>(bv));
      }
      bw.push_back(word);
    }
    const int PBITS = [] { int v = 0; for (int t = KB; t > 0; t >>= 1) ++v; return v; }();
    const int DB = PBITS + 2;
    const int EW = FORM == 3 ? DIGITS * DB + 6 : KB + 6;
    for (int g = 0; g < OC / EL; ++g) {
      rf::Bits word(EL * EW);
      for (int l = 0; l < EL; ++l) {
        const Chan& c = ch[g * EL + l];
        if (FORM == 3) {
          auto d = rf::naf(c.m);
          for (size_t j = 0; j < d.size(); ++j)
            word.set(l * EW + static_cast<int>(j) * DB, DB,
                     (1ULL << (PBITS + 1)) | (d[j].neg ? (1ULL << PBITS) : 0) | static_cast<uint64_t>(d[j].pos));
          word.set(l * EW + DIGITS * DB, 6, static_cast<uint64_t>(c.s));
        } else {
          word.set(l * EW, KB, c.m);
          word.set(l * EW + KB, 6, static_cast<uint64_t>(c.s));
        }
      }
      rw.push_back(word);
    }
    rf::write_hex("w.hex", ww, OP == 0 ? PE * SIMD * 8 : EL * 8);
    rf::write_hex("b.hex", bw, EL * ACC);
    rf::write_hex("rq.hex", rw, EL * EW);
  }

  // Expected int8 outputs.
  std::vector<std::vector<int>> ys;
  for (auto& r : raw) {
    std::vector<int> y(r.size());
    for (size_t i = 0; i < r.size(); ++i) {
      if (OP <= 1) {
        const Chan& c = ch[i % OC];
        y[i] = rf::clamp_i(rf::rescale(r[i], c.m, c.s, KB, RND) + ZY, LO, HI);
      } else {
        y[i] = static_cast<int>(r[i]);
      }
    }
    ys.push_back(y);
  }

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vtb_chain>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) {
    dut->clk_i = 0;
    dut->eval();
    dut->clk_i = 1;
    dut->eval();
  }
  dut->rst_ni = 1;

  const long in_beats = static_cast<long>(H) * W * CF;
  const long out_beats = static_cast<long>(OH) * OW * OC / OL;
  long checked = 0;
  double interval = 0;
  uint64_t latency = 0;
  size_t next_frame = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0, stall = phase == 0 ? args.stall : 0.0;
    long nf = phase == 0 ? frames : full_speed_frames;
    rf::Source src;
    struct Exp {
      rf::Bits data;
      bool last;
      long frame, beat;
    };
    std::deque<Exp> expect;
    for (long f = 0; f < nf; ++f, ++next_frame) {
      const Tensor& x = xs[next_frame];
      for (long bt = 0; bt < in_beats; ++bt) {
        rf::Beat beat;
        beat.data = rf::Bits(SIMD * 8);
        for (int j = 0; j < SIMD; ++j) beat.data.set(j * 8, 8, static_cast<uint8_t>(x[static_cast<size_t>(bt) * SIMD + j]));
        beat.last = bt == in_beats - 1;
        src.q.push_back(beat);
      }
      const auto& y = ys[next_frame];
      for (long bt = 0; bt < out_beats; ++bt) {
        Exp e{rf::Bits(OL * 8), bt == out_beats - 1, static_cast<long>(next_frame), bt};
        for (int l = 0; l < OL; ++l) e.data.set(l * 8, 8, static_cast<uint8_t>(y[static_cast<size_t>(bt) * OL + l]));
        expect.push_back(e);
      }
    }
    rf::StreamRule rule;
    uint64_t cycle = 0, idle = 0, first_in = 0, first_out = 0;
    bool seen_in = false, seen_out = false;
    std::vector<uint64_t> frame_end;
    while (!expect.empty() || !src.idle()) {
      dut->clk_i = 0;
      src.offer(rng, bubble);
      bool ready = !rng.chance(stall);
      dut->s_axis_tvalid = src.valid;
      if (src.valid) {
        rf::put(dut->s_axis_tdata, src.cur.data, SIMD * 8);
        dut->s_axis_tlast = src.cur.last;
      }
      dut->m_axis_tready = ready;
      dut->eval();
      bool sfire = src.valid && dut->s_axis_tready;
      if (sfire && !seen_in) {
        seen_in = true;
        first_in = cycle;
      }
      rf::Bits got = rf::take(dut->m_axis_tdata, OL * 8);
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, 0);
      if (!err.empty()) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        if (expect.empty()) {
          rep.fail("an output beat beyond the expected ones");
          break;
        }
        if (!seen_out) {
          seen_out = true;
          first_out = cycle;
        }
        const Exp& e = expect.front();
        for (int l = 0; l < OL; ++l) {
          ++checked;
          int g = static_cast<int8_t>(got.get(l * 8, 8)), x = static_cast<int8_t>(e.data.get(l * 8, 8));
          if (g != x) {
            long elem = e.beat * OL + l;
            long o = elem % OC, px = elem / OC;
            rep.fail("frame " + std::to_string(e.frame) + " output (" + std::to_string(px / OW) + ", " +
                     std::to_string(px % OW) + ", " + std::to_string(o) + "): expected " + std::to_string(x) + ", got " +
                     std::to_string(g) +
                     (OP <= 1 ? " (acc " + std::to_string(raw[static_cast<size_t>(e.frame)][static_cast<size_t>(elem)]) + ")" : ""));
          }
        }
        if (static_cast<bool>(dut->m_axis_tlast) != e.last)
          rep.fail("frame " + std::to_string(e.frame) + " beat " + std::to_string(e.beat) + ": tlast differs");
        if (e.last) frame_end.push_back(cycle);
        expect.pop_front();
        idle = 0;
      } else if (++idle > args.idle_limit) {
        rep.fail("deadlock: no output beat for " + std::to_string(args.idle_limit) + " cycles");
        break;
      }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) src.valid = false;
    }
    if (phase == 1 && frame_end.size() >= 3) {
      interval = static_cast<double>(frame_end.back() - frame_end[1]) / static_cast<double>(frame_end.size() - 2);
      latency = first_out - first_in;
    }
  }
  rep.checked = checked;
  char det[200];
  std::snprintf(det, sizeof det, "%ld elements checked; full speed: interval %.1f cycles/frame (window %ld, input %ld beats), first output after %llu cycles",
                checked, interval, static_cast<long>(OH) * OW * KK * CF * (OP == 0 ? OC / PE : 1), in_beats,
                static_cast<unsigned long long>(latency));
  return rep.finish(det);
}
