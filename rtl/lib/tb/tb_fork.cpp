// Unit test of rf_fork (P_NOUT, P_WIDTH): every output sees every beat exactly once and in
// order, each output stalls independently at random, the source has random bubbles; at full
// speed one beat per cycle.
#include "Vrf_fork.h"
#include "rf_tb.h"

#include <memory>
#include <type_traits>

namespace {
constexpr int NO = P_NOUT, WD = P_WIDTH;
}

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  rf::Report rep("rf_fork NOUT=" + std::to_string(NO) + " WIDTH=" + std::to_string(WD), args.max_report);
  auto ctx = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<Vrf_fork>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) { dut->clk_i = 0; dut->eval(); dut->clk_i = 1; dut->eval(); }
  dut->rst_ni = 1;
  long checked = 0;
  uint64_t fs_cycles = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0;
    long n = phase == 0 ? (args.frames > 0 ? args.frames : 5000) : 500;
    rf::Source src;
    std::vector<rf::Beat> beats;
    for (long i = 0; i < n; ++i) {
      rf::Beat b;
      b.data = rf::Bits(WD);
      for (int k = 0; k < WD; k += 32) b.data.set(k, WD - k < 32 ? WD - k : 32, rng.next());
      b.last = rng.chance(0.1);
      beats.push_back(b);
      src.q.push_back(b);
    }
    std::vector<long> pos(NO, 0);
    std::vector<double> stall(NO);
    for (int o = 0; o < NO; ++o) stall[o] = phase == 0 ? rng.range(5, 60) / 100.0 : 0.0;
    uint64_t idle = 0, cycle = 0;
    auto done = [&] { for (long p : pos) if (p < n) return false; return true; };
    while (!done()) {
      dut->clk_i = 0;
      src.offer(rng, bubble);
      dut->s_axis_tvalid = src.valid;
      if (src.valid) { rf::put(dut->s_axis_tdata, src.cur.data, WD); dut->s_axis_tlast = src.cur.last; }
      uint64_t ready = 0;
      for (int o = 0; o < NO; ++o) if (!rng.chance(stall[o])) ready |= 1ULL << o;
      dut->m_axis_tready = static_cast<std::remove_reference<decltype(dut->m_axis_tready)>::type>(ready);
      dut->eval();
      bool sfire = src.valid && dut->s_axis_tready;
      rf::Bits got = rf::take(dut->m_axis_tdata, WD);
      bool any = false;
      for (int o = 0; o < NO; ++o) {
        if (((dut->m_axis_tvalid >> o) & 1) && ((ready >> o) & 1)) {
          any = true;
          ++checked;
          if (pos[o] >= n) { rep.fail("output " + std::to_string(o) + ": a beat too many"); continue; }
          const rf::Beat& e = beats[static_cast<size_t>(pos[o])];
          if (got != e.data || static_cast<bool>(dut->m_axis_tlast) != e.last)
            rep.fail("output " + std::to_string(o) + " beat " + std::to_string(pos[o]) + " differs");
          ++pos[o];
        }
      }
      if (any) idle = 0;
      else if (++idle > args.idle_limit) { rep.fail("deadlock"); break; }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) src.valid = false;
    }
    if (phase == 1) {
      fs_cycles = cycle;
      if (fs_cycles != static_cast<uint64_t>(n) + 1)
        rep.fail("full speed: " + std::to_string(n) + " beats took " + std::to_string(fs_cycles) + " cycles");
    }
  }
  rep.checked = checked;
  return rep.finish(std::to_string(checked) + " beats checked over " + std::to_string(NO) + " outputs; full speed 500 beats in " +
                    std::to_string(fs_cycles) + " cycles");
}
