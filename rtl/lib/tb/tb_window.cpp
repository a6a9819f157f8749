// Unit test of rf_window (geometry as P_* macros). Streams random frames (several back to
// back) with random bubbles and stalls and compares every output beat (data, per-element
// padding flags, tlast) with the window sequence computed here from DESIGN section 5's index
// formula; a second phase starves the reader (85% input bubbles, no stalls), so a pixel that
// starts before its last input word has arrived reads a stale word. A third phase runs at full
// speed and reports the interval (cycles per frame in
// steady state) and the latency, and checks the interval against the documented bound
// max(OH*OW*KH*KW*C/SIMD, H*W*C/SIMD) (+ the measured slack printed).
#include "Vrf_window.h"
#include "rf_tb.h"

#include <algorithm>
#include <memory>

namespace {

constexpr int H = P_H, W = P_W, C = P_C, KH = P_KH, KW = P_KW, SH = P_SH, SW = P_SW;
constexpr int DH = P_DH, DW = P_DW, PT = P_PT, PB = P_PB, PL = P_PL, PR = P_PR;
constexpr int SIMD = P_SIMD, ORDER = P_ORDER, PADV = P_PAD_VALUE;
constexpr int CF = C / SIMD;
constexpr int OH = (H + PT + PB - (KH - 1) * DH - 1) / SH + 1;
constexpr int OW = (W + PL + PR - (KW - 1) * DW - 1) / SW + 1;
constexpr long kInBeats = static_cast<long>(H) * W * CF;
constexpr long kOutBeats = static_cast<long>(OH) * OW * KH * KW * CF;

struct Exp {
  rf::Bits data;
  bool pad;
  bool last;
  int oy, ox, ky, kx, cf;
};

void expected(const std::vector<int8_t>& x, std::deque<Exp>& out) {
  for (int oy = 0; oy < OH; ++oy)
    for (int ox = 0; ox < OW; ++ox) {
      auto tap = [&](int ky, int kx, int cf, bool last) {
        int iy = oy * SH - PT + ky * DH, ix = ox * SW - PL + kx * DW;
        bool pad = iy < 0 || iy >= H || ix < 0 || ix >= W;
        Exp e{rf::Bits(SIMD * 8), pad, last, oy, ox, ky, kx, cf};
        for (int j = 0; j < SIMD; ++j) {
          int v = pad ? PADV : x[(static_cast<size_t>(iy) * W + ix) * C + cf * SIMD + j];
          e.data.set(j * 8, 8, static_cast<uint8_t>(v));
        }
        out.push_back(e);
      };
      bool lp = oy == OH - 1 && ox == OW - 1;
      if (ORDER == 0) {
        for (int ky = 0; ky < KH; ++ky)
          for (int kx = 0; kx < KW; ++kx)
            for (int cf = 0; cf < CF; ++cf) tap(ky, kx, cf, lp && ky == KH - 1 && kx == KW - 1 && cf == CF - 1);
      } else {
        for (int cf = 0; cf < CF; ++cf)
          for (int ky = 0; ky < KH; ++ky)
            for (int kx = 0; kx < KW; ++kx) tap(ky, kx, cf, lp && ky == KH - 1 && kx == KW - 1 && cf == CF - 1);
      }
    }
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  char nm[256];
  std::snprintf(nm, sizeof nm, "rf_window %dx%dx%d k%dx%d s%dx%d d%dx%d pad%d,%d,%d,%d SIMD=%d ORDER=%d", H, W, C, KH,
                KW, SH, SW, DH, DW, PT, PB, PL, PR, SIMD, ORDER);
  rf::Report rep(nm, args.max_report);

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vrf_window>(ctx.get());
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

  long frames = args.frames > 0 ? args.frames : std::max<long>(3, std::min<long>(40, 60000 / (kOutBeats + 1)));
  long checked = 0;
  double interval = 0;
  uint64_t latency = 0;
  for (int phase = 0; phase < 3; ++phase) {
    double bubble = phase == 0 ? args.bubble : phase == 1 ? 0.85 : 0.0;
    double stall = phase == 0 ? args.stall : 0.0;
    long nf = phase == 0 ? frames : phase == 1 ? std::max<long>(2, frames / 4) : 4;
    rf::Source src;
    std::deque<Exp> expect;
    for (long f = 0; f < nf; ++f) {
      std::vector<int8_t> x(static_cast<size_t>(kInBeats) * SIMD);
      for (auto& v : x) v = rng.i8();
      for (long b = 0; b < kInBeats; ++b) {
        rf::Beat beat;
        beat.data = rf::Bits(SIMD * 8);
        for (int j = 0; j < SIMD; ++j) beat.data.set(j * 8, 8, static_cast<uint8_t>(x[static_cast<size_t>(b) * SIMD + j]));
        beat.last = b == kInBeats - 1;
        src.q.push_back(beat);
      }
      expected(x, expect);
    }
    rf::StreamRule rule;
    uint64_t cycle = 0, idle = 0, first_in = 0, first_out = 0;
    bool seen_in = false, seen_out = false;
    std::vector<uint64_t> frame_end;
    long out_index = 0;
    while (!expect.empty() || !src.idle()) {  // (trailing input rows no pixel reads must still go in)
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
      rf::Bits got = rf::take(dut->m_axis_tdata, SIMD * 8);
      uint64_t user = dut->m_axis_tuser;
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, user);
      if (!err.empty()) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        if (!seen_out) {
          seen_out = true;
          first_out = cycle;
        }
        const Exp& e = expect.front();
        uint64_t want_user = e.pad ? ((SIMD >= 64) ? ~0ULL : ((1ULL << SIMD) - 1)) : 0;
        ++checked;
        if (got != e.data || user != want_user || static_cast<bool>(dut->m_axis_tlast) != e.last) {
          char buf[256];
          std::snprintf(buf, sizeof buf, "beat %ld (frame %ld, pixel %d,%d, tap %d,%d, group %d): expected %s pad %d last %d, got %s pad %llx last %d",
                        out_index, out_index / kOutBeats, e.oy, e.ox, e.ky, e.kx, e.cf, e.data.hex(SIMD * 8).c_str(), e.pad,
                        e.last, got.hex(SIMD * 8).c_str(), static_cast<unsigned long long>(user), dut->m_axis_tlast);
          rep.fail(buf);
        }
        if (e.last) frame_end.push_back(cycle);
        expect.pop_front();
        ++out_index;
        idle = 0;
      } else if (++idle > args.idle_limit) {
        rep.fail("deadlock: no output beat for " + std::to_string(args.idle_limit) + " cycles after " +
                 std::to_string(out_index) + " beats (input beats left " + std::to_string(src.q.size()) + ")");
        break;
      }
      dut->clk_i = 1;
      dut->eval();
      ++cycle;
      if (sfire) src.valid = false;
    }
    if (phase == 2 && frame_end.size() >= 3) {
      interval = static_cast<double>(frame_end.back() - frame_end[1]) / static_cast<double>(frame_end.size() - 2);
      latency = first_out - first_in;
      long bound = std::max(kOutBeats, kInBeats);
      if (interval < static_cast<double>(bound))
        rep.fail("interval " + std::to_string(interval) + " below the physical bound " + std::to_string(bound));
    }
  }
  rep.checked = checked;
  char det[256];
  std::snprintf(det, sizeof det, "%ld beats checked; full speed: interval %.1f cycles/frame (out %ld, in %ld beats), latency %llu",
                checked, interval, kOutBeats, kInBeats, static_cast<unsigned long long>(latency));
  return rep.finish(det);
}
