{{ header }}
//
// Verilator harness for {{ top }}: streams the inputs of every vector into s_axis (random
// bubbles, tlast on each inference's last element), drops m_axis_tready at random, and checks
// against the vector file, in stream order: every op's output tensor and every MAC engine's
// accumulators where the file has them (the first mismatch names the vector, op, tensor and
// element), the output tensor and the class on m_axis, and the AXI-Stream rules on every
// stream it observes. A watchdog declares a deadlock when no observed stream moves for
// --idle-limit cycles and lists the blocked streams (valid, not ready) by producer and
// consumer. Last line: "N passed, M failed".
//
// Usage: Vtb --vectors FILE.hex [--seed S] [--bubble P] [--stall P] [--max-report N]
//            [--idle-limit CYCLES] [--trace OUT.fst]
#include "V{{ top }}.h"
#include "V{{ top }}___024root.h"
#include "ratflow_tb.h"

#include <algorithm>
#include <ctime>
#include <memory>

namespace {

using Root = V{{ top }}___024root;
constexpr int kInputs = {{ input_len }};
constexpr int kClasses = {{ classes }};
constexpr int kOutLanes = {{ out_lanes }};
constexpr int kOutBeats = kClasses / kOutLanes;
constexpr int kTaps = {{ taps.len() }};

struct TapMeta {
  const char* op;
  const char* kind;
  const char* tensor;
  const char* stream;
  int op_index;
  int acc;      // 1: accumulators (32-bit expected values), 0: int8 output
  long elems;   // per inference
  int h, w, c;  // element e is pixel (e / c / w, e / c % w), channel e % c
};
const TapMeta kMeta[kTaps] = {
{%- for t in taps %}
  {{ t.meta }},
{%- endfor %}
};
const int kBits[kTaps] = { {% for t in taps %}{{ t.bits }}, {% endfor %}};

struct Vec {
  long index;
  int cls;
  std::vector<uint64_t> input;
  std::vector<std::vector<uint64_t>> tap;  // empty: not in the file
  std::vector<uint64_t> out;
};

std::vector<Vec> load(const std::string& path) {
  rf::Tokens t(path);
  t.expect("ratflow-vectors");
  if (t.number("format version") != 2) t.fail("unsupported vector file version (expected 2)");
  t.expect("vectors");
  long n = t.number("vector count");
  t.expect("inputs");
  if (t.number("input count") != kInputs) t.fail("input count differs from the design");
  t.expect("classes");
  if (t.number("class count") != kClasses) t.fail("output size differs from the design");
  t.expect("taps");
  if (t.number("tap count") != kTaps) t.fail("tap count differs from the design");
  for (int j = 0; j < kTaps; ++j) {
    t.expect("tap");
    if (t.number("tap elements") != kMeta[j].elems) t.fail("tap size differs from the design");
    if (t.number("tap bits") != kBits[j]) t.fail("tap width differs from the design");
  }
  std::vector<Vec> vs(static_cast<size_t>(n));
  for (auto& v : vs) {
    t.expect("v");
    v.index = t.number("vector index");
    v.cls = static_cast<int>(t.number("class"));
    t.hex_fields(kInputs, 2, v.input, nullptr, "input");
    v.tap.resize(kTaps);
    for (int j = 0; j < kTaps; ++j) {
      std::string tok = t.need("tap values");
      if (tok == "-") continue;
      t.unget(tok);
      t.hex_fields(static_cast<int>(kMeta[j].elems), kMeta[j].acc ? 8 : 2, v.tap[j], nullptr, "tap values");
    }
    t.hex_fields(kClasses, 2, v.out, nullptr, "output");
  }
  std::string extra;
  if (t.next(extra)) t.fail("trailing data after the last vector");
  return vs;
}

// Per-tap progress and checks.
struct Checker {
  const std::vector<Vec>& vs;
  rf::Report& rep;
  std::vector<char>& bad;
  std::vector<size_t> pos = std::vector<size_t>(kTaps, 0);
  std::vector<rf::StreamRule> rule = std::vector<rf::StreamRule>(kTaps);
  std::vector<char> overflow = std::vector<char>(kTaps, 0);

  std::string where(const Vec& v, int j, long e) const {
    const TapMeta& m = kMeta[j];
    long px = e / m.c;
    char buf[160];
    std::snprintf(buf, sizeof buf, " element %ld (pixel (%ld, %ld) channel %ld)", e, px / m.w, px % m.w,
                  e % m.c);
    return "vector " + std::to_string(v.index) + ": op " + std::to_string(m.op_index) + " \"" + m.op +
           "\" (" + m.kind + ") " + (m.acc ? "accumulators" : "output") + " of tensor \"" + m.tensor +
           "\"" + buf;
  }
  void element(int j, uint64_t raw) {
    const TapMeta& m = kMeta[j];
    size_t p = pos[j]++;
    size_t f = p / static_cast<size_t>(m.elems);
    long e = static_cast<long>(p % static_cast<size_t>(m.elems));
    if (f >= vs.size()) {
      if (!overflow[j]) {
        overflow[j] = 1;
        rep.error(std::string("stream ") + m.stream + " (op \"" + m.op + "\") carried more elements than " +
                  std::to_string(vs.size()) + " inferences have");
      }
      return;
    }
    const auto& exp = vs[f].tap[j];
    if (exp.empty()) return;
    long long want, got;
    if (m.acc) {
      want = rf::s32(exp[e]);
      got = rf::sext32(raw, kBits[j]);
    } else {
      want = rf::s8(exp[e]);
      got = rf::s8(raw);
    }
    if (want != got) {
      bad[f] = 1;
      rep.mismatch(where(vs[f], j, e), want, got);
    }
  }
  // Every tap has carried every inference (units that skip the tail of their input, like a
  // strided pool, finish their input after the class has left).
  bool complete(size_t n) const {
    for (int j = 0; j < kTaps; ++j)
      if (pos[j] < n * static_cast<size_t>(kMeta[j].elems)) return false;
    return true;
  }
  void rule_check(int j, bool valid, bool ready, uint64_t sig) {
    std::string err = rule[j].check(valid, ready, sig);
    if (!err.empty()) rep.error(std::string("stream ") + kMeta[j].stream + " (op \"" + kMeta[j].op + "\"): " + err);
  }
};

// Observes every tap in the cycle before the clock edge; returns whether any beat moved.
bool observe(const Root* r, Checker& ck) {
  bool moved = false;
{%- for t in taps %}
  {
    const bool v = {{ t.valid }} != 0, rd = {{ t.ready }} != 0;
    if (v && rd) {
      for (int l = 0; l < {{ t.lanes }}; ++l) ck.element({{ t.index }}, rf::get_bits({{ t.data }}, l * {{ t.bits }}, {{ t.bits }}));
      moved = true;
    }
    if ((v && !rd) || ck.rule[{{ t.index }}].pending) {
      uint64_t h = 0xcbf29ce484222325ULL;
      for (int l = 0; l < {{ t.lanes }}; ++l) h = (h ^ rf::get_bits({{ t.data }}, l * {{ t.bits }}, {{ t.bits }})) * 0x100000001b3ULL;
      ck.rule_check({{ t.index }}, v, rd, h);
    } else {
      ck.rule[{{ t.index }}].pending = false;
    }
  }
{%- endfor %}
  return moved;
}

// The deadlock report: every stream holding a beat its reader does not take.
void report_blocked(const Root* r) {
{%- for s in streams %}
  if (({{ s.valid }}) != 0 && ({{ s.ready }}) == 0) std::printf("  blocked: %s\n", {{ s.label }});
{%- endfor %}
}

double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  std::vector<Vec> vs = load(args.vectors);
  const size_t n = vs.size();
  rf::Rng rng(args.seed);
  rf::Report rep(args.max_report);

  auto ctx = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<V{{ top }}>(ctx.get());
  const Root* root = dut->rootp;
#if !VM_TRACE
  if (!args.trace.empty()) rf::die("this build has no waveform support: rebuild with tracing (ratflow sim --trace)");
#endif
  rf::Clock<V{{ top }}> tick(ctx.get(), dut.get(), args.trace);

  dut->rst_ni = 0;
  dut->s_axis_tvalid = 0;
  dut->s_axis_tdata = 0;
  dut->s_axis_tlast = 0;
  dut->m_axis_tready = 0;
  for (int i = 0; i < 4; ++i) { tick(0); tick(1); }
  dut->rst_ni = 1;

  std::vector<char> bad(n, 0);
  Checker ck{vs, rep, bad};
  rf::StreamRule out_rule;
  size_t beat = 0;                       // next input element over all vectors
  const size_t beats = n * kInputs;
  size_t done = 0;                       // vectors whose class beat arrived
  int out_beat = 0;                      // beat within the current output packet
  uint64_t cycle = 0, first_in = 0, first_out = 0, idle = 0;
  bool seen_in = false, seen_out = false, hung = false;
  std::vector<uint64_t> class_cycles;
  class_cycles.reserve(n);
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();

  while (done < n || !ck.complete(n)) {
    if (!dut->s_axis_tvalid && beat < beats && !rng.chance(args.bubble)) {
      dut->s_axis_tvalid = 1;
      dut->s_axis_tdata = static_cast<CData>(vs[beat / kInputs].input[beat % kInputs]);
      dut->s_axis_tlast = (beat % kInputs == kInputs - 1) ? 1 : 0;
    }
    dut->m_axis_tready = rng.chance(args.stall) ? 0 : 1;
    tick(0);

    // Observe: every value below is the one before this cycle's clock edge.
    const bool in_fire = dut->s_axis_tvalid && dut->s_axis_tready;
    if (in_fire && !seen_in) { seen_in = true; first_in = cycle; }
    bool moved = observe(root, ck) || in_fire;
    {
      uint64_t h = 0xcbf29ce484222325ULL;
      for (int l = 0; l < kOutLanes; ++l) h = (h ^ rf::get_bits(dut->m_axis_tdata, l * 8, 8)) * 0x100000001b3ULL;
      h = (h ^ dut->m_axis_tuser ^ (static_cast<uint64_t>(dut->m_axis_tlast) << 1)) * 0x100000001b3ULL;
      std::string err = out_rule.check(dut->m_axis_tvalid, dut->m_axis_tready, h);
      if (!err.empty()) rep.error(std::string("m_axis: ") + err);
    }
    if (dut->m_axis_tvalid && !seen_out) { seen_out = true; first_out = cycle; }
    if (dut->m_axis_tvalid && dut->m_axis_tready && done >= n) {
      rep.error("m_axis: a beat after the last vector's class");
    } else if (dut->m_axis_tvalid && dut->m_axis_tready) {
      moved = true;
      const Vec& v = vs[done];
      const bool user = dut->m_axis_tuser != 0, last = dut->m_axis_tlast != 0;
      if (out_beat < kOutBeats) {
        if (user || last) rep.error("m_axis: tensor beat " + std::to_string(out_beat) + " of vector " + std::to_string(v.index) + " has tuser/tlast set");
        for (int l = 0; l < kOutLanes; ++l) {
          int e = out_beat * kOutLanes + l;
          long long got = rf::s8(rf::get_bits(dut->m_axis_tdata, l * 8, 8));
          long long want = rf::s8(v.out[e]);
          if (got != want) {
            bad[done] = 1;
            rep.mismatch("vector " + std::to_string(v.index) + ": m_axis output element " + std::to_string(e), want, got);
          }
        }
        ++out_beat;
      } else {
        if (!user || !last) rep.error("m_axis: the class beat of vector " + std::to_string(v.index) + " lacks tuser or tlast");
        long long got = static_cast<long long>(rf::get_bits(dut->m_axis_tdata, 0, kOutLanes * 8 < 32 ? kOutLanes * 8 : 32));
        if (got != v.cls) {
          bad[done] = 1;
          rep.mismatch("vector " + std::to_string(v.index) + ": class", v.cls, got);
        }
        class_cycles.push_back(cycle);
        out_beat = 0;
        ++done;
      }
    }

    tick(1);
    if (in_fire) {
      ++beat;
      dut->s_axis_tvalid = 0;
    }
    ++cycle;
    idle = moved ? 0 : idle + 1;
    if (idle > args.idle_limit) {
      hung = true;
      break;
    }
  }
  const double wall = rf::seconds_since(t0);
  const double cpu = cpu_seconds() - c0;
  if (hung) {
    std::printf("error: deadlock: no observed stream moved for %llu cycles (cycle %llu, %zu of %zu vectors done); blocked streams (valid, not ready):\n",
                static_cast<unsigned long long>(args.idle_limit), static_cast<unsigned long long>(cycle), done, n);
    report_blocked(root);
    for (size_t i = done; i < n; ++i) bad[i] = 1;
  }
  tick.close();
  dut->final();
  for (int j = 0; j < kTaps && !hung; ++j) {
    if (ck.pos[j] != n * static_cast<size_t>(kMeta[j].elems)) {
      rep.error(std::string("stream ") + kMeta[j].stream + " (op \"" + kMeta[j].op + "\") carried " + std::to_string(ck.pos[j]) +
                " elements, expected " + std::to_string(n * kMeta[j].elems));
    }
  }
  size_t failed = static_cast<size_t>(std::count(bad.begin(), bad.end(), 1));
  // A protocol or structural error that no vector owns fails the run as a whole.
  if (failed == 0 && rep.mismatches > 0) failed = 1;
  // Gaps between the last class beats: up to 8 inferences.
  const size_t gaps = class_cycles.size() >= 2 ? std::min<size_t>(8, class_cycles.size() - 1) : 0;
  uint64_t interval_sum = gaps ? class_cycles.back() - class_cycles[class_cycles.size() - 1 - gaps] : 0;
  std::printf("stats cycles=%llu wall_s=%.6f cpu_s=%.6f latency=%llu interval_sum=%llu interval_n=%zu vectors=%zu\n",
              static_cast<unsigned long long>(cycle), wall, cpu,
              static_cast<unsigned long long>(seen_out && seen_in ? first_out - first_in : 0),
              static_cast<unsigned long long>(interval_sum), gaps, n);
  std::printf("%zu passed, %zu failed\n", n - std::min(failed, n), std::min(failed, n));
  return failed == 0 ? 0 : 1;
}
