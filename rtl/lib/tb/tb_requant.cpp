// Unit test of rf_requant (all parameters as P_* macros). Per-channel (m, s) for the ROM forms
// are drawn here (m = 0 channels, m = 2^k - 1, m = 2^(k-1), s at both ends of S_MIN..S_MAX,
// CSD digits within DIGITS) and written to the ROM image rf_requant.hex; the constant forms use
// P_M, P_S. Accumulators mix the whole ACC_BITS range, both ends, small values, values around
// every output step near the clamp limits, and exact rounding ties (single: a*m = 2^(s-1)
// mod 2^s; double: the SRDHM tie and the RoundingDivideByPOT tie). Every lane of every beat is
// checked against the 128-bit reference (rf_ref.h), with random bubbles and stalls, tlast
// passing through, and the latency (4 cycles) measured at full speed.
#include "Vrf_requant.h"
#include "rf_ref.h"
#include "rf_tb.h"

#include <algorithm>
#include <memory>

namespace {

constexpr int kLanes = P_LANES;
constexpr int kCh = P_CH;
constexpr int kAcc = P_ACC_BITS;
constexpr int kK = P_K_BITS;
constexpr int kRnd = P_ROUNDING;
constexpr int kForm = P_FORM;
constexpr int kZy = P_ZY;
constexpr int kLo = P_LO;
constexpr int kHi = P_HI;
#ifdef P_M
constexpr uint64_t kM = P_M;
#else
constexpr uint64_t kM = 0;
#endif
#ifdef P_S
constexpr int kS = P_S;
#else
constexpr int kS = 0;
#endif
#ifdef P_S_MIN
constexpr int kSMin = P_S_MIN;
#else
constexpr int kSMin = 0;
#endif
#ifdef P_S_MAX
constexpr int kSMax = P_S_MAX;
#else
constexpr int kSMax = 62;
#endif
#ifdef P_DIGITS
constexpr int kDigits = P_DIGITS;
#else
constexpr int kDigits = 1;
#endif

constexpr int kGroups = kCh / kLanes;
constexpr int kPB = [] { int b = 0; for (int v = kK; v > 0; v >>= 1) ++b; return b; }();
constexpr int kDB = kPB + 2;
constexpr int kEW = kForm == 3 ? kDigits * kDB + 6 : kK + 6;
constexpr int64_t kAccMin = -(static_cast<int64_t>(1) << (kAcc - 1));
constexpr int64_t kAccMax = (static_cast<int64_t>(1) << (kAcc - 1)) - 1;

struct Chan {
  uint64_t m;
  int s;
};

std::vector<Chan> make_channels(rf::Rng& rng) {
  std::vector<Chan> ch(kCh);
  const uint64_t mmax = (1ULL << kK) - 1;
  for (int c = 0; c < kCh; ++c) {
    if (kForm < 2) {
      ch[c] = {kM, kS};
      continue;
    }
    uint64_t m;
    for (;;) {
      int pick = static_cast<int>(rng.range(0, 9));
      m = pick == 0 ? 0 : pick == 1 ? mmax : pick == 2 ? (1ULL << (kK - 1)) : rng.range(1, static_cast<int64_t>(mmax));
      if (kForm != 3 || static_cast<int>(rf::naf(m).size()) <= kDigits) break;
    }
    int lo = kSMin;
    if (kRnd == 1 && m > 0) lo = std::max(kSMin, kK);
    int s;
    int pick = static_cast<int>(rng.range(0, 3));
    s = pick == 0 ? lo : pick == 1 ? kSMax : static_cast<int>(rng.range(lo, kSMax));
    if (kRnd == 1 && m > 0 && s < kK)
      rf::die("test configuration: S_MAX < K_BITS leaves no legal shift for double rounding");
    ch[c] = {m, s};
  }
  return ch;
}

void write_rom(const std::vector<Chan>& ch) {
  std::vector<rf::Bits> words;
  for (int g = 0; g < kGroups; ++g) {
    rf::Bits w(kLanes * kEW);
    for (int p = 0; p < kLanes; ++p) {
      const Chan& c = ch[g * kLanes + p];
      int base = p * kEW;
      if (kForm == 2) {
        w.set(base, kK, c.m);
        w.set(base + kK, 6, static_cast<uint64_t>(c.s));
      } else {
        auto d = rf::naf(c.m);
        for (size_t j = 0; j < d.size(); ++j) {
          uint64_t f = (1ULL << (kPB + 1)) | (d[j].neg ? (1ULL << kPB) : 0) | static_cast<uint64_t>(d[j].pos);
          w.set(base + static_cast<int>(j) * kDB, kDB, f);
        }
        w.set(base + kDigits * kDB, 6, static_cast<uint64_t>(c.s));
      }
    }
    words.push_back(w);
  }
  rf::write_hex("rf_requant.hex", words, kLanes * kEW);
}

using rf::i128;

int64_t clamp_acc(i128 v) {
  return v < kAccMin ? kAccMin : v > kAccMax ? kAccMax : static_cast<int64_t>(v);
}

// One accumulator for channel c, drawn from a mix of distributions.
int64_t draw(rf::Rng& rng, const Chan& c) {
  int pick = static_cast<int>(rng.range(0, 15));
  int64_t span = kAccMax;
  switch (pick) {
    case 0: return kAccMin;
    case 1: return kAccMax;
    case 2: return clamp_acc(rng.range(-2, 2));
    case 3:
    case 4: {  // uniform over the whole range
      return rng.range(kAccMin, kAccMax);
    }
    case 5: return clamp_acc(rng.range(-4096, 4096));
    case 6:
    case 7:
    case 8: {  // around an output step near the clamp limits: a ~ (t + 1/2) 2^s / m
      if (c.m == 0) return rng.range(kAccMin, kAccMax);
      int t = static_cast<int>(rng.range(kLo - kZy - 3, kHi - kZy + 3));
      i128 num = (static_cast<i128>(2 * t + 1) << c.s);
      i128 a = num / (2 * static_cast<i128>(c.m)) + rng.range(-3, 3);
      return clamp_acc(a);
    }
    case 9:
    case 10: {  // exact tie of the final rounding (single), or of SRDHM (double)
      int t = kRnd == 0 ? c.s : kK;
      int64_t b = rf::tie_base(c.m, t);
      if (b < 0) return rng.range(kAccMin, kAccMax);
      int v = 0;
      while (((c.m >> v) & 1) == 0) ++v;
      int u = t - v;
      i128 period = static_cast<i128>(1) << u;
      i128 j = rng.range(-64, 64);
      if (rng.chance(0.5) && u < 62) j = rng.range(-(span >> std::min(u, 62)) , span >> std::min(u, 62));
      i128 a = b + j * period;
      if (a < kAccMin || a > kAccMax) a = b;
      return clamp_acc(a);
    }
    case 11:
    case 12: {  // double: x = SRDHM(a) an exact tie of RoundingDivideByPOT by n = s - k
      if (kRnd == 0 || c.m == 0 || c.s - kK < 1) return rng.range(kAccMin, kAccMax);
      int n = c.s - kK;
      i128 xt = (2 * static_cast<i128>(rng.range(-300, 300)) + 1) << (n - 1);
      // Smallest a with SRDHM(a) >= xt; the step of SRDHM in a is m/2^k < 1, so it hits xt.
      i128 a = ((xt << kK) - (static_cast<i128>(1) << (kK - 1))) / static_cast<i128>(c.m) - 2;
      for (int i = 0; i < 8 && rf::srdhm(clamp_acc(a), c.m, kK) < xt; ++i) ++a;
      return clamp_acc(a);
    }
    default: return clamp_acc(rng.range(-(1LL << std::min(kAcc - 1, 20)), 1LL << std::min(kAcc - 1, 20)));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Rng rng(args.seed);
  std::string name = "rf_requant FORM=" + std::to_string(kForm) + " ROUNDING=" + std::to_string(kRnd) +
                     " K=" + std::to_string(kK) + " ACC=" + std::to_string(kAcc) + " LANES=" + std::to_string(kLanes) +
                     " CH=" + std::to_string(kCh);
  rf::Report rep(name, args.max_report);

  std::vector<Chan> ch = make_channels(rng);
  if (kForm >= 2) write_rom(ch);

  auto ctx = std::make_unique<VerilatedContext>();
  ctx->commandArgs(argc, argv);
  auto dut = std::make_unique<Vrf_requant>(ctx.get());
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

  long beats = args.frames > 0 ? args.frames : 6000;
  beats -= beats % kGroups;
  if (beats == 0) beats = kGroups;
  struct Exp {
    int64_t acc[kLanes];
    int y[kLanes];
    bool last;
  };
  // Phase 1 with bubbles/stalls, phase 2 at full speed (latency and rate measured).
  long checked_lanes = 0;
  uint64_t latency_seen = 0;
  long full_speed_beats = 0;
  uint64_t full_speed_cycles = 0;
  for (int phase = 0; phase < 2; ++phase) {
    double bubble = phase == 0 ? args.bubble : 0.0;
    double stall = phase == 0 ? args.stall : 0.0;
    long n = phase == 0 ? beats : std::max<long>(kGroups, (200 / kGroups) * kGroups);
    rf::Source src;
    std::deque<Exp> expect;
    for (long b = 0; b < n; ++b) {
      rf::Beat beat;
      beat.data = rf::Bits(kLanes * kAcc);
      Exp e;
      int g = static_cast<int>(b % kGroups);
      for (int p = 0; p < kLanes; ++p) {
        const Chan& c = ch[g * kLanes + p];
        int64_t a = draw(rng, c);
        e.acc[p] = a;
        e.y[p] = rf::clamp_i(rf::rescale(a, c.m, c.s, kK, kRnd) + kZy, kLo, kHi);
        beat.data.set(p * kAcc, kAcc, static_cast<uint64_t>(a));
      }
      beat.last = rng.chance(0.1);
      e.last = beat.last;
      src.q.push_back(beat);
      expect.push_back(e);
    }
    rf::StreamRule rule;
    uint64_t cycle = 0, idle = 0, first_in = 0, first_out = 0;
    bool seen_in = false, seen_out = false;
    long out_index = 0;
    while (!expect.empty()) {
      dut->clk_i = 0;
      src.offer(rng, bubble);
      bool ready = !rng.chance(stall);
      dut->s_axis_tvalid = src.valid;
      if (src.valid) {
        rf::put(dut->s_axis_tdata, src.cur.data, kLanes * kAcc);
        dut->s_axis_tlast = src.cur.last;
      }
      dut->m_axis_tready = ready;
      dut->eval();
      bool sfire = src.valid && dut->s_axis_tready;
      if (sfire && !seen_in) {
        seen_in = true;
        first_in = cycle;
      }
      rf::Bits got = rf::take(dut->m_axis_tdata, kLanes * 8);
      std::string err = rule.check(dut->m_axis_tvalid, ready, got, dut->m_axis_tlast, 0);
      if (!err.empty()) rep.fail("output stream rule: " + err);
      if (dut->m_axis_tvalid && ready) {
        if (!seen_out) {
          seen_out = true;
          first_out = cycle;
        }
        const Exp& e = expect.front();
        int g = static_cast<int>(out_index % kGroups);
        for (int p = 0; p < kLanes; ++p) {
          int y = static_cast<int8_t>(got.get(p * 8, 8));
          ++checked_lanes;
          if (y != e.y[p]) {
            const Chan& c = ch[g * kLanes + p];
            rep.fail("beat " + std::to_string(out_index) + " lane " + std::to_string(p) + " (channel " +
                     std::to_string(g * kLanes + p) + ", m " + std::to_string(c.m) + ", s " + std::to_string(c.s) +
                     "): acc " + std::to_string(e.acc[p]) + ": expected " + std::to_string(e.y[p]) + ", got " +
                     std::to_string(y));
          }
        }
        if (static_cast<bool>(dut->m_axis_tlast) != e.last) rep.fail("beat " + std::to_string(out_index) + ": tlast differs");
        expect.pop_front();
        ++out_index;
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
      latency_seen = first_out - first_in;
      full_speed_beats = n;
      full_speed_cycles = cycle;
      if (latency_seen != 4) rep.fail("latency " + std::to_string(latency_seen) + " cycles, documented 4");
      if (full_speed_cycles != static_cast<uint64_t>(n) + 4)
        rep.fail("full speed: " + std::to_string(n) + " beats took " + std::to_string(full_speed_cycles) +
                 " cycles, expected " + std::to_string(n + 4));
    }
  }
  rep.checked = checked_lanes;
  return rep.finish(std::to_string(checked_lanes) + " lanes checked, latency " + std::to_string(latency_seen) +
                    ", " + std::to_string(full_speed_beats) + " beats in " + std::to_string(full_speed_cycles) +
                    " cycles at full speed");
}
