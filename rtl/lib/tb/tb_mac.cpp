// Unit test of rf_mac (P_K, P_O, P_SIMD, P_PE, P_ZX, P_FOLD_ZX, P_ACC_BITS; P_VECS vectors per
// frame for tlast). Random weights (with the extremes -127/127 and rows of zeros) and biases
// are written to w.hex / b.hex (the folded bias when FOLD_ZX = 1); input vectors are random,
// all -128, or all 127. Every output lane is compared with the exact 64-bit reference
// acc[o] = b[o] + sum (x - ZX) w[o] (modulo 2^ACC_BITS, and the test data keep the true value
// within ACC_BITS so the comparison is of exact values), with random bubbles and stalls; at
// full speed the cycles per vector must be SF*NF and the latency 2.
#include "Vrf_mac.h"
#include "rf_tb.h"

#include <algorithm>
#include <memory>

namespace {

constexpr int K = P_K, O = P_O, SIMD = P_SIMD, PE = P_PE, ZX = P_ZX, FOLD = P_FOLD_ZX, ACC = P_ACC_BITS;
#ifdef P_VECS
constexpr int VECS = P_VECS;
#else
constexpr int VECS = 3;
#endif
constexpr int SF = K / SIMD, NF = O / PE;

int64_t wrap(int64_t v) {  // v modulo 2^ACC as a signed ACC-bit value
  if (ACC >= 64) return v;
  uint64_t m = (1ULL << ACC) - 1;
  uint64_t u = static_cast<uint64_t>(v) & m;
  if (u >> (ACC - 1)) u |= ~m;
  return static_cast<int64_t>(u);
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  char nm[160];
  std::snprintf(nm, sizeof nm, "rf_mac K=%d O=%d SIMD=%d PE=%d ZX=%d FOLD_ZX=%d ACC=%d", K, O, SIMD, PE, ZX, FOLD, ACC);
  rf::Report rep(nm, args.max_report);

  // Weights and biases; the bias range keeps |acc| < 2^(ACC-1).
  std::vector<int> w(static_cast<size_t>(O) * K);
  std::vector<int64_t> b(O);
  int64_t max_dot = static_cast<int64_t>(K) * 255 * 127;
  int64_t acc_lim = ACC >= 63 ? (1LL << 40) : (1LL << (ACC - 1)) - 1;
  int64_t bias_lim = std::min<int64_t>(acc_lim - max_dot, 1LL << 31);
  if (bias_lim < 0) rf::die("test configuration: ACC_BITS too small for K (the test keeps accumulators exact)");
  for (int o = 0; o < O; ++o) {
    int kind = static_cast<int>(rng.range(0, 5));
    for (int i = 0; i < K; ++i) {
      int v = kind == 0 ? 0 : kind == 1 ? (rng.chance(0.5) ? 127 : -127) : static_cast<int>(rng.range(-127, 127));
      w[static_cast<size_t>(o) * K + i] = v;
    }
    b[o] = rng.range(-bias_lim, bias_lim);
  }
  {
    std::vector<rf::Bits> wwords, bwords;
    for (int nf = 0; nf < NF; ++nf) {
      for (int sf = 0; sf < SF; ++sf) {
        rf::Bits word(PE * SIMD * 8);
        for (int p = 0; p < PE; ++p)
          for (int s = 0; s < SIMD; ++s)
            word.set((p * SIMD + s) * 8, 8, static_cast<uint8_t>(w[static_cast<size_t>(nf * PE + p) * K + sf * SIMD + s]));
        wwords.push_back(word);
      }
      rf::Bits bw(PE * ACC);
      for (int p = 0; p < PE; ++p) {
        int o = nf * PE + p;
        int64_t bv = b[o];
        if (FOLD) {
          int64_t sw = 0;
          for (int i = 0; i < K; ++i) sw += w[static_cast<size_t>(o) * K + i];
          bv -= static_cast<int64_t>(ZX) * sw;
        }
        bw.set(p * ACC, ACC, static_cast<uint64_t>(bv));
      }
      bwords.push_back(bw);
    }
    rf::write_hex("w.hex", wwords, PE * SIMD * 8);
    rf::write_hex("b.hex", bwords, PE * ACC);
  }

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vrf_mac>(ctx.get());
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

  long frames = args.frames > 0 ? args.frames : std::max<long>(4, 40000 / (static_cast<long>(VECS) * SF * NF + 1));
  long checked = 0;
  uint64_t fs_cycles = 0, fs_latency = 0;
  long fs_vecs = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0, stall = phase == 0 ? args.stall : 0.0;
    long nf_frames = phase == 0 ? frames : 2;
    rf::Source src;
    struct Exp {
      int64_t acc[PE];
      bool last;
      long vec;
      int nf;
    };
    std::deque<Exp> expect;
    long vec_id = 0;
    for (long f = 0; f < nf_frames; ++f)
      for (int v = 0; v < VECS; ++v, ++vec_id) {
        int kind = static_cast<int>(rng.range(0, 7));
        std::vector<int> x(K);
        for (auto& e : x) e = kind == 0 ? -128 : kind == 1 ? 127 : kind == 2 ? ZX : rng.i8();
        for (int sf = 0; sf < SF; ++sf) {
          rf::Beat beat;
          beat.data = rf::Bits(SIMD * 8);
          for (int s = 0; s < SIMD; ++s) beat.data.set(s * 8, 8, static_cast<uint8_t>(x[sf * SIMD + s]));
          beat.last = (v == VECS - 1) && (sf == SF - 1);
          src.q.push_back(beat);
        }
        for (int nf = 0; nf < NF; ++nf) {
          Exp e;
          for (int p = 0; p < PE; ++p) {
            int o = nf * PE + p;
            int64_t a = b[o];
            for (int i = 0; i < K; ++i) a += static_cast<int64_t>(x[i] - ZX) * w[static_cast<size_t>(o) * K + i];
            e.acc[p] = a;
          }
          e.last = (v == VECS - 1) && nf == NF - 1;
          e.vec = vec_id;
          e.nf = nf;
          expect.push_back(e);
        }
      }
    rf::StreamRule rule;
    uint64_t cycle = 0, idle = 0, first_in = 0, first_out = 0;
    bool seen_in = false, seen_out = false;
    while (!expect.empty()) {
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
      rf::Bits got = rf::take(dut->m_axis_tdata, PE * ACC);
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, 0);
      if (!err.empty()) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        if (!seen_out) {
          seen_out = true;
          first_out = cycle;
        }
        const Exp& e = expect.front();
        for (int p = 0; p < PE; ++p) {
          int64_t g = got.sget(p * ACC, ACC);
          ++checked;
          if (g != wrap(e.acc[p]))
            rep.fail("vector " + std::to_string(e.vec) + " channel " + std::to_string(e.nf * PE + p) + ": expected " +
                     std::to_string(e.acc[p]) + ", got " + std::to_string(g));
        }
        if (static_cast<bool>(dut->m_axis_tlast) != e.last)
          rep.fail("vector " + std::to_string(e.vec) + " fold " + std::to_string(e.nf) + ": tlast differs");
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
    if (phase == 1) {
      fs_vecs = nf_frames * VECS;
      fs_cycles = cycle;
      fs_latency = first_out - first_in;
      uint64_t want = static_cast<uint64_t>(fs_vecs) * SF * NF + 2;
      if (fs_cycles != want)
        rep.fail("full speed: " + std::to_string(fs_vecs) + " vectors took " + std::to_string(fs_cycles) +
                 " cycles, expected SF*NF per vector + 2 = " + std::to_string(want));
    }
  }
  rep.checked = checked;
  return rep.finish(std::to_string(checked) + " accumulators checked; full speed " + std::to_string(fs_vecs) +
                    " vectors in " + std::to_string(fs_cycles) + " cycles (SF*NF = " + std::to_string(SF * NF) +
                    " per vector), first output " + std::to_string(fs_latency) + " cycles after the first input");
}
