// Unit test of rf_argmax (P_LANES, P_N, P_APPEND): random tensors with many ties (codes drawn
// from a few values, all-equal tensors, the maximum at the first and at the last index), every
// output beat (tensor pass-through, class beat with tuser/tlast) compared with the reference
// (argmax, ties to the lowest index), random bubbles and stalls.
#include "Vrf_argmax.h"
#include "rf_tb.h"

#include <memory>

namespace {
constexpr int L = P_LANES, N = P_N, APPEND = P_APPEND, NB = N / L;
}

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  rf::Report rep("rf_argmax LANES=" + std::to_string(L) + " N=" + std::to_string(N) + " APPEND=" + std::to_string(APPEND),
                 args.max_report);
  auto ctx = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<Vrf_argmax>(ctx.get());
  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 3; ++i) { dut->clk_i = 0; dut->eval(); dut->clk_i = 1; dut->eval(); }
  dut->rst_ni = 1;

  long tensors = args.frames > 0 ? args.frames : 3000;
  rf::Source src;
  struct Exp { rf::Bits data; bool user; long t; };
  std::deque<Exp> expect;
  for (long t = 0; t < tensors; ++t) {
    std::vector<int> x(N);
    int kind = static_cast<int>(t % 5);
    for (int i = 0; i < N; ++i) {
      if (kind == 0) x[i] = -128;                                       // all equal: class 0
      else if (kind == 1) x[i] = static_cast<int>(rng.range(-2, 1));     // many ties
      else if (kind == 2) x[i] = i == N - 1 ? 127 : static_cast<int>(rng.range(-128, 126));
      else x[i] = rng.i8();
    }
    int best = 0;
    for (int i = 1; i < N; ++i) if (x[i] > x[best]) best = i;
    for (int b = 0; b < NB; ++b) {
      rf::Beat beat;
      beat.data = rf::Bits(L * 8);
      for (int l = 0; l < L; ++l) beat.data.set(l * 8, 8, static_cast<uint8_t>(x[b * L + l]));
      beat.last = b == NB - 1;
      src.q.push_back(beat);
      if (APPEND) expect.push_back({beat.data, false, t});
    }
    rf::Bits cls(L * 8);
    cls.set(0, L * 8 < 32 ? L * 8 : 32, static_cast<uint64_t>(best));
    expect.push_back({cls, true, t});
  }
  rf::StreamRule rule;
  uint64_t idle = 0, cycle = 0;
  long checked = 0;
  while (!expect.empty()) {
    dut->clk_i = 0;
    src.offer(rng, args.bubble);
    bool ready = !rng.chance(args.stall);
    dut->s_axis_tvalid = src.valid;
    if (src.valid) { rf::put(dut->s_axis_tdata, src.cur.data, L * 8); dut->s_axis_tlast = src.cur.last; }
    dut->m_axis_tready = ready;
    dut->eval();
    bool sfire = src.valid && dut->s_axis_tready;
    rf::Bits got = rf::take(dut->m_axis_tdata, L * 8);
    std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, dut->m_axis_tuser);
    if (!err.empty()) rep.fail("output stream rule: " + err);
    if (dut->m_axis_tvalid && ready) {
      const Exp& e = expect.front();
      ++checked;
      if (got != e.data || static_cast<bool>(dut->m_axis_tuser) != e.user || static_cast<bool>(dut->m_axis_tlast) != e.user)
        rep.fail("tensor " + std::to_string(e.t) + (e.user ? " class beat" : " tensor beat") + ": expected " +
                 e.data.hex(L * 8) + " user " + std::to_string(e.user) + ", got " + got.hex(L * 8) + " user " +
                 std::to_string(dut->m_axis_tuser) + " last " + std::to_string(dut->m_axis_tlast));
      expect.pop_front();
      idle = 0;
    } else if (++idle > args.idle_limit) { rep.fail("deadlock"); break; }
    dut->clk_i = 1;
    dut->eval();
    ++cycle;
    if (sfire) src.valid = false;
  }
  rep.checked = checked;
  return rep.finish(std::to_string(tensors) + " tensors, " + std::to_string(checked) + " beats checked in " +
                    std::to_string(cycle) + " cycles");
}
