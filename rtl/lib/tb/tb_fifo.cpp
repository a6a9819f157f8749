// Unit test of rf_fifo (parameters P_WIDTH, P_DEPTH, P_SYNC_READ as -D macros):
//   1. capacity: with the sink never ready and the source always valid, exactly DEPTH beats
//      are accepted, then the beats come out in order;
//   2. random data and tlast with random bubbles and stalls, compared beat by beat;
//   3. throughput at full speed: cycles for N beats equal the documented rate.
#include "Vrf_fifo.h"
#include "rf_tb.h"

#include <memory>

namespace {

constexpr int kWidth = P_WIDTH;
constexpr int kDepth = P_DEPTH;
constexpr int kSync = P_SYNC_READ;

struct Tb {
  std::unique_ptr<VerilatedContext> ctx;
  std::unique_ptr<Vrf_fifo> dut;
  uint64_t cycle = 0;
  Tb() : ctx(new VerilatedContext), dut(new Vrf_fifo(ctx.get())) {
    dut->rst_ni = 0;
    dut->s_axis_tvalid = 0;
    dut->m_axis_tready = 0;
    for (int i = 0; i < 3; ++i) step();
    dut->rst_ni = 1;
  }
  void step() {
    dut->clk_i = 0;
    dut->eval();
    dut->clk_i = 1;
    dut->eval();
    ++cycle;
  }
};

rf::Beat random_beat(rf::Rng& rng) {
  rf::Beat b;
  b.data = rf::Bits(kWidth);
  for (int i = 0; i < kWidth; i += 32) b.data.set(i, kWidth - i < 32 ? kWidth - i : 32, rng.next());
  b.last = rng.chance(0.2);
  return b;
}

// Runs `beats` through the FIFO; returns the cycles from the first offer to the last beat out.
uint64_t run(Tb& tb, rf::Rng& rng, rf::Report& rep, long beats, double bubble, double stall) {
  rf::Source src;
  std::deque<rf::Beat> expect;
  for (long i = 0; i < beats; ++i) {
    src.q.push_back(random_beat(rng));
    expect.push_back(src.q.back());
  }
  rf::StreamRule rule;
  uint64_t start = tb.cycle, idle = 0;
  while (!expect.empty()) {
    auto* d = tb.dut.get();
    d->clk_i = 0;
    src.offer(rng, bubble);
    bool ready = !rng.chance(stall);
    d->s_axis_tvalid = src.valid;
    if (src.valid) {
      rf::put(d->s_axis_tdata, src.cur.data, kWidth);
      d->s_axis_tlast = src.cur.last;
    }
    d->m_axis_tready = ready;
    d->eval();
    bool sfire = src.valid && d->s_axis_tready;
    rf::Bits got = rf::take(d->m_axis_tdata, kWidth);
    std::string err = rule.check(d->m_axis_tvalid, ready, got, d->m_axis_tlast, 0);
    if (!err.empty()) rep.fail("output stream rule: " + err);
    if (d->m_axis_tvalid && ready) {
      const rf::Beat& e = expect.front();
      ++rep.checked;
      if (got != e.data || static_cast<bool>(d->m_axis_tlast) != e.last)
        rep.fail("beat " + std::to_string(beats - static_cast<long>(expect.size())) + ": expected " +
                 e.data.hex(kWidth) + (e.last ? " last" : "") + ", got " + got.hex(kWidth) +
                 (d->m_axis_tlast ? " last" : ""));
      expect.pop_front();
      idle = 0;
    } else if (++idle > 10000) {
      rep.fail("deadlock: no output beat for 10000 cycles");
      break;
    }
    d->clk_i = 1;
    d->eval();
    ++tb.cycle;
    if (sfire) src.valid = false;
  }
  return tb.cycle - start;
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  std::string name = "rf_fifo WIDTH=" + std::to_string(kWidth) + " DEPTH=" + std::to_string(kDepth) +
                     " SYNC_READ=" + std::to_string(kSync);
  rf::Report rep(name, args.max_report);
  Tb tb;
  auto* d = tb.dut.get();

  // 1. Capacity.
  long accepted = 0;
  rf::Beat b = random_beat(rng);
  for (int c = 0; c < 3 * kDepth + 20; ++c) {
    d->clk_i = 0;
    d->s_axis_tvalid = 1;
    rf::put(d->s_axis_tdata, b.data, kWidth);
    d->s_axis_tlast = b.last;
    d->m_axis_tready = 0;
    d->eval();
    bool fire = d->s_axis_tready;
    d->clk_i = 1;
    d->eval();
    if (fire) ++accepted;
  }
  if (accepted != kDepth)
    rep.fail("capacity: accepted " + std::to_string(accepted) + " beats with the sink stalled, expected DEPTH = " +
             std::to_string(kDepth));
  // Drain them.
  long drained = 0;
  d->s_axis_tvalid = 0;
  for (int c = 0; c < 3 * kDepth + 20; ++c) {
    d->clk_i = 0;
    d->m_axis_tready = 1;
    d->eval();
    bool fire = d->m_axis_tvalid;
    if (fire && (rf::take(d->m_axis_tdata, kWidth) != b.data)) rep.fail("capacity: drained beat differs");
    d->clk_i = 1;
    d->eval();
    if (fire) ++drained;
  }
  if (drained != accepted) rep.fail("capacity: drained " + std::to_string(drained) + " of " + std::to_string(accepted));

  // 2. Random traffic.
  long n = args.frames > 0 ? args.frames : 4000;
  run(tb, rng, rep, n, args.bubble, args.stall);
  run(tb, rng, rep, n / 4, 0.7, 0.1);
  run(tb, rng, rep, n / 4, 0.1, 0.7);

  // 3. Throughput at full speed: N beats take N + latency cycles when the FIFO sustains one
  // beat per cycle (DEPTH >= 2 register style, DEPTH >= 3 memory style).
  const long tn = 1000;
  uint64_t cyc = run(tb, rng, rep, tn, 0.0, 0.0);
  long latency = kSync ? 2 : 1;
  bool full_rate = kSync ? kDepth >= 3 : kDepth >= 2;
  uint64_t want = full_rate ? tn + latency - 1 + 1 : 0;  // the first beat is offered in cycle 0
  if (full_rate && cyc != want)
    rep.fail("throughput: " + std::to_string(tn) + " beats took " + std::to_string(cyc) + " cycles, expected " +
             std::to_string(want));
  return rep.finish(std::to_string(rep.checked) + " beats checked, capacity " + std::to_string(accepted) +
                    ", " + std::to_string(tn) + " beats in " + std::to_string(cyc) + " cycles at full speed");
}
