// Unit test of rf_dwc (P_IN_LANES, P_OUT_LANES, P_ELEM_BITS): a random element stream (packets
// of random whole-output-beat lengths with tlast) regrouped and compared element by element,
// tlast on the right beat, random bubbles and stalls, one beat per cycle at full speed.
#include "Vrf_dwc.h"
#include "rf_tb.h"

#include <algorithm>
#include <memory>

namespace {
constexpr int IL = P_IN_LANES, OL = P_OUT_LANES, E = P_ELEM_BITS;
constexpr int BIG = IL > OL ? IL : OL;
}

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  rf::Report rep("rf_dwc IN_LANES=" + std::to_string(IL) + " OUT_LANES=" + std::to_string(OL) + " ELEM_BITS=" +
                 std::to_string(E), args.max_report);
  auto ctx = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<Vrf_dwc>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) { dut->clk_i = 0; dut->eval(); dut->clk_i = 1; dut->eval(); }
  dut->rst_ni = 1;
  long checked = 0;
  uint64_t fs_cycles = 0;
  long fs_out = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0, stall = phase == 0 ? args.stall : 0.0;
    long packets = phase == 0 ? (args.frames > 0 ? args.frames : 600) : 20;
    std::vector<uint64_t> elems;
    std::vector<char> last_elem;
    for (long p = 0; p < packets; ++p) {
      long n = BIG * rng.range(1, 8);
      for (long i = 0; i < n; ++i) {
        elems.push_back(rng.next() & (E >= 64 ? ~0ULL : ((1ULL << E) - 1)));
        last_elem.push_back(i == n - 1);
      }
    }
    rf::Source src;
    for (size_t i = 0; i < elems.size(); i += IL) {
      rf::Beat b;
      b.data = rf::Bits(IL * E);
      for (int l = 0; l < IL; ++l) b.data.set(l * E, E, elems[i + l]);
      b.last = last_elem[i + IL - 1];
      src.q.push_back(b);
    }
    std::deque<rf::Beat> expect;
    for (size_t i = 0; i < elems.size(); i += OL) {
      rf::Beat b;
      b.data = rf::Bits(OL * E);
      for (int l = 0; l < OL; ++l) b.data.set(l * E, E, elems[i + l]);
      b.last = last_elem[i + OL - 1];
      expect.push_back(b);
    }
    long n_out = static_cast<long>(expect.size());
    rf::StreamRule rule;
    uint64_t idle = 0, cycle = 0;
    long idx = 0;
    while (!expect.empty()) {
      dut->clk_i = 0;
      src.offer(rng, bubble);
      bool ready = !rng.chance(stall);
      dut->s_axis_tvalid = src.valid;
      if (src.valid) { rf::put(dut->s_axis_tdata, src.cur.data, IL * E); dut->s_axis_tlast = src.cur.last; }
      dut->m_axis_tready = ready;
      dut->eval();
      bool sfire = src.valid && dut->s_axis_tready;
      rf::Bits got = rf::take(dut->m_axis_tdata, OL * E);
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, 0);
      if (!err.empty() && IL != OL) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        ++checked;
        if (got != expect.front().data || static_cast<bool>(dut->m_axis_tlast) != expect.front().last)
          rep.fail("output beat " + std::to_string(idx) + ": expected " + expect.front().data.hex(OL * E) +
                   (expect.front().last ? " last" : "") + ", got " + got.hex(OL * E) + (dut->m_axis_tlast ? " last" : ""));
        expect.pop_front();
        ++idx;
        idle = 0;
      } else if (++idle > args.idle_limit) { rep.fail("deadlock"); break; }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) src.valid = false;
    }
    if (phase == 1) {
      fs_cycles = cycle;
      fs_out = n_out;
      long in_beats = static_cast<long>(elems.size()) / IL;
      uint64_t want = static_cast<uint64_t>(std::max(in_beats, n_out)) + (IL == OL ? 0 : 1);
      if (fs_cycles != want)
        rep.fail("full speed: " + std::to_string(n_out) + " output beats took " + std::to_string(fs_cycles) +
                 " cycles, expected " + std::to_string(want));
    }
  }
  rep.checked = checked;
  return rep.finish(std::to_string(checked) + " beats checked; full speed " + std::to_string(fs_out) + " output beats in " +
                    std::to_string(fs_cycles) + " cycles");
}
