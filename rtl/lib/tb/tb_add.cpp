// Unit test of rf_add (P_LANES, P_Z1, P_Z2, P_ZOUT, P_LEFT_SHIFT, P_K_BITS, P_ROUNDING, P_FORM,
// P_M1, P_S1, P_M2, P_S2, P_MO, P_SO, P_LO, P_HI). Two independent random sources (each with its
// own bubbles: the unit must pair them) feed random codes, with runs of extremes (-128/127 and
// the zero points); every output element is compared with the 128-bit reference of DESIGN
// section 5's ADD, under random stalls; latency 6 and one beat per cycle checked at full speed.
#include "Vrf_add.h"
#include "rf_ref.h"
#include "rf_tb.h"

#include <memory>

namespace {

constexpr int L = P_LANES, Z1 = P_Z1, Z2 = P_Z2, ZO = P_ZOUT, LS = P_LEFT_SHIFT, KB = P_K_BITS;
constexpr int RND = P_ROUNDING, FORM = P_FORM, LO = P_LO, HI = P_HI;
constexpr uint64_t M1 = P_M1, M2 = P_M2, MO = P_MO;
constexpr int S1 = P_S1, S2 = P_S2, SO = P_SO;

int ref(int q1, int q2) {
  int64_t x1 = static_cast<int64_t>(q1 - Z1) * (static_cast<int64_t>(1) << LS);
  int64_t x2 = static_cast<int64_t>(q2 - Z2) * (static_cast<int64_t>(1) << LS);
  rf::i128 a1 = rf::rescale(x1, M1, S1, KB, RND);
  rf::i128 a2 = rf::rescale(x2, M2, S2, KB, RND);
  rf::i128 r = rf::rescale(static_cast<int64_t>(a1 + a2), MO, SO, KB, RND);
  return rf::clamp_i(r + ZO, LO, HI);
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  char nm[200];
  std::snprintf(nm, sizeof nm, "rf_add LANES=%d k=%d %s FORM=%d M=(%llu,%d)(%llu,%d)(%llu,%d) LS=%d", L, KB,
                RND ? "double" : "single", FORM, static_cast<unsigned long long>(M1), S1,
                static_cast<unsigned long long>(M2), S2, static_cast<unsigned long long>(MO), SO, LS);
  rf::Report rep(nm, args.max_report);

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vrf_add>(ctx.get());
  dut->rst_ni = 0;
  dut->s0_axis_tvalid = 0;
  dut->s1_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) {
    dut->clk_i = 0;
    dut->eval();
    dut->clk_i = 1;
    dut->eval();
  }
  dut->rst_ni = 1;

  long checked = 0;
  uint64_t fs_cycles = 0, fs_lat = 0;
  long fs_beats = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0, stall = phase == 0 ? args.stall : 0.0;
    long n = phase == 0 ? (args.frames > 0 ? args.frames : 12000) : 300;
    rf::Source s0, s1;
    struct Exp {
      int y[L];
      int q1[L], q2[L];
      bool last;
    };
    std::deque<Exp> expect;
    int mode = 0;
    for (long b = 0; b < n; ++b) {
      if (b % 50 == 0) mode = static_cast<int>(rng.range(0, 5));
      rf::Beat b0, b1;
      b0.data = rf::Bits(L * 8);
      b1.data = rf::Bits(L * 8);
      Exp e;
      for (int l = 0; l < L; ++l) {
        int q1, q2;
        switch (mode) {
          case 0: q1 = rng.chance(0.5) ? -128 : 127; q2 = rng.chance(0.5) ? -128 : 127; break;
          case 1: q1 = Z1 + static_cast<int>(rng.range(-2, 2)); q2 = Z2 + static_cast<int>(rng.range(-2, 2)); break;
          default: q1 = rng.i8(); q2 = rng.i8(); break;
        }
        q1 = q1 < -128 ? -128 : q1 > 127 ? 127 : q1;
        q2 = q2 < -128 ? -128 : q2 > 127 ? 127 : q2;
        e.q1[l] = q1;
        e.q2[l] = q2;
        e.y[l] = ref(q1, q2);
        b0.data.set(l * 8, 8, static_cast<uint8_t>(q1));
        b1.data.set(l * 8, 8, static_cast<uint8_t>(q2));
      }
      b0.last = b1.last = rng.chance(0.05);
      e.last = b0.last;
      s0.q.push_back(b0);
      s1.q.push_back(b1);
      expect.push_back(e);
    }
    rf::StreamRule rule;
    uint64_t cycle = 0, idle = 0, first_in = 0, first_out = 0;
    bool seen_in = false, seen_out = false;
    long idx = 0;
    while (!expect.empty()) {
      dut->clk_i = 0;
      s0.offer(rng, bubble);
      s1.offer(rng, bubble);
      bool ready = !rng.chance(stall);
      dut->s0_axis_tvalid = s0.valid;
      dut->s1_axis_tvalid = s1.valid;
      if (s0.valid) {
        rf::put(dut->s0_axis_tdata, s0.cur.data, L * 8);
        dut->s0_axis_tlast = s0.cur.last;
      }
      if (s1.valid) {
        rf::put(dut->s1_axis_tdata, s1.cur.data, L * 8);
        dut->s1_axis_tlast = s1.cur.last;
      }
      dut->m_axis_tready = ready;
      dut->eval();
      bool f0 = s0.valid && dut->s0_axis_tready, f1 = s1.valid && dut->s1_axis_tready;
      if (f0 != f1) rep.fail("the two inputs moved separately");
      if (f0 && !seen_in) {
        seen_in = true;
        first_in = cycle;
      }
      rf::Bits got = rf::take(dut->m_axis_tdata, L * 8);
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, 0);
      if (!err.empty()) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        if (!seen_out) {
          seen_out = true;
          first_out = cycle;
        }
        const Exp& e = expect.front();
        for (int l = 0; l < L; ++l) {
          ++checked;
          int g = static_cast<int8_t>(got.get(l * 8, 8));
          if (g != e.y[l])
            rep.fail("beat " + std::to_string(idx) + " lane " + std::to_string(l) + ": q1 " + std::to_string(e.q1[l]) +
                     " q2 " + std::to_string(e.q2[l]) + ": expected " + std::to_string(e.y[l]) + ", got " + std::to_string(g));
        }
        if (static_cast<bool>(dut->m_axis_tlast) != e.last) rep.fail("beat " + std::to_string(idx) + ": tlast differs");
        expect.pop_front();
        ++idx;
        idle = 0;
      } else if (++idle > args.idle_limit) {
        rep.fail("deadlock");
        break;
      }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (f0) s0.valid = false;
      if (f1) s1.valid = false;
    }
    if (phase == 1) {
      fs_cycles = cycle;
      fs_beats = n;
      fs_lat = first_out - first_in;
      if (fs_lat != 6 || fs_cycles != static_cast<uint64_t>(n) + 6)
        rep.fail("full speed: latency " + std::to_string(fs_lat) + " (documented 6), " + std::to_string(n) + " beats in " +
                 std::to_string(fs_cycles) + " cycles (expected " + std::to_string(n + 6) + ")");
    }
  }
  rep.checked = checked;
  return rep.finish(std::to_string(checked) + " elements checked; full speed " + std::to_string(fs_beats) + " beats in " +
                    std::to_string(fs_cycles) + " cycles, latency " + std::to_string(fs_lat));
}
