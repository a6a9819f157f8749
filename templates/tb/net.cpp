{{ header }}
//
// Verilator harness for {{ top }}: streams the inputs of every vector (random bubbles), drops
// out_ready at random, and checks against the vector file: each layer's accumulators (at the
// requantizer input), each layer's int8 output stream, the logits and the class. It also checks
// the AXI-Stream rules on every stream it observes. Last line: "N passed, M failed".
//
// Usage: Vtb --vectors FILE.hex [--seed S] [--bubble P] [--stall P] [--max-report N]
//            [--idle-limit CYCLES] [--trace OUT.fst]
#include "V{{ top }}.h"
#include "V{{ top }}___024root.h"
#include "ratflow_tb.h"

#include <algorithm>
#include <memory>

namespace {

using Root = V{{ top }}___024root;
constexpr int kLayers = {{ layers.len() }};
constexpr int kInputs = {{ input_len }};
constexpr int kClasses = {{ classes }};
const int kAccBits[kLayers] = { {{ acc_bits }} };
const int kOut[kLayers] = { {{ outs }} };
const int kP[kLayers] = { {{ ps }} };
const int kGroups[kLayers] = { {{ groups }} };
const char* const kName[kLayers] = { {{ names }} };

struct Tap {
  bool valid;
  bool ready;
  uint8_t data;
};

// Inter-layer streams and requantizer inputs, made readable by taps.vlt.
Tap stream_tap(const Root* r, int l) {
  switch (l) {
{%- for l in layers %}
    case {{ l.index }}: return Tap{r->{{ l.valid }} != 0, r->{{ l.ready }} != 0, static_cast<uint8_t>(r->{{ l.data }})};
{%- endfor %}
    default: rf::die("bad layer");
  }
}
bool acc_valid(const Root* r, int l) {
  switch (l) {
{%- for l in layers %}
    case {{ l.index }}: return r->{{ l.rq_valid }} != 0;
{%- endfor %}
    default: rf::die("bad layer");
  }
}
int acc_group(const Root* r, int l) {
  switch (l) {
{%- for l in layers %}
    case {{ l.index }}: return static_cast<int>(r->{{ l.rq_group }});
{%- endfor %}
    default: rf::die("bad layer");
  }
}
int32_t acc_lane(const Root* r, int l, int lane) {
  switch (l) {
{%- for l in layers %}
    case {{ l.index }}: return rf::sext32(rf::get_bits(r->{{ l.acc_all }}, lane * kAccBits[l], kAccBits[l]), kAccBits[l]);
{%- endfor %}
    default: rf::die("bad layer");
  }
}

struct Vec {
  long index;
  int cls;
  std::vector<uint64_t> input;
  std::vector<uint64_t> acc[kLayers];
  std::vector<uint64_t> out[kLayers];
};

std::vector<Vec> load(const std::string& path) {
  rf::Tokens t(path);
  t.expect("ratflow-vectors");
  if (t.number("format version") != 1) t.fail("unsupported vector file version");
  t.expect("vectors");
  long n = t.number("vector count");
  t.expect("layers");
  if (t.number("layer count") != kLayers) t.fail("layer count differs from the design");
  t.expect("inputs");
  if (t.number("input count") != kInputs) t.fail("input count differs from the design");
  t.expect("outputs");
  for (int l = 0; l < kLayers; ++l)
    if (t.number("layer outputs") != kOut[l]) t.fail("layer size differs from the design");
  std::vector<Vec> vs(static_cast<size_t>(n));
  for (auto& v : vs) {
    t.expect("v");
    v.index = t.number("vector index");
    v.cls = static_cast<int>(t.number("class"));
    t.hex_fields(kInputs, 2, v.input, nullptr, "input");
    for (int l = 0; l < kLayers; ++l) t.hex_fields(kOut[l], 8, v.acc[l], nullptr, "accumulators");
    for (int l = 0; l < kLayers; ++l) t.hex_fields(kOut[l], 2, v.out[l], nullptr, "outputs");
  }
  std::string extra;
  if (t.next(extra)) t.fail("trailing data after the last vector");
  return vs;
}

std::string where(const Vec& v, int l, int c, const char* what) {
  return "vector " + std::to_string(v.index) + " layer " + std::to_string(l) + " (" + kName[l] +
         ") channel " + std::to_string(c) + " " + what;
}

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

  // Reset.
  dut->rst_ni = 0;
  dut->in_valid_i = 0;
  dut->in_data_i = 0;
  dut->out_ready_i = 0;
  for (int i = 0; i < 4; ++i) { tick(0); tick(1); }
  dut->rst_ni = 1;

  std::vector<char> bad(n, 0);
  size_t beat = 0;                       // next input beat over all vectors
  const size_t beats = n * kInputs;
  size_t done = 0;                       // vectors whose output beat arrived
  size_t stream_pos[kLayers] = {};       // beats seen per layer stream
  size_t acc_frame[kLayers] = {};        // vector whose accumulators come next, per layer
  int acc_next_group[kLayers] = {};
  rf::StreamRule rule[kLayers + 2];
  uint64_t cycle = 0, first_in = 0, first_valid = 0, last_out = 0;
  bool seen_in = false, seen_valid = false;
  std::vector<uint64_t> out_cycles;
  out_cycles.reserve(n);
  bool hung = false;
  const auto t0 = std::chrono::steady_clock::now();

  while (done < n) {
    // Source: AXI rule, once valid is offered it stays until taken.
    if (!dut->in_valid_i && beat < beats && !rng.chance(args.bubble)) {
      dut->in_valid_i = 1;
      dut->in_data_i = static_cast<CData>(vs[beat / kInputs].input[beat % kInputs]);
    }
    dut->out_ready_i = rng.chance(args.stall) ? 0 : 1;
    tick(0);

    // Observe: every value below is the one before this cycle's clock edge.
    const bool in_fire = dut->in_valid_i && dut->in_ready_o;
    if (in_fire && !seen_in) { seen_in = true; first_in = cycle; }
    for (int l = 0; l < kLayers; ++l) {
      Tap tp = stream_tap(root, l);
      std::string err = rule[l].check(tp.valid, tp.ready, tp.data);
      if (!err.empty()) rep.error(std::string("layer ") + std::to_string(l) + " (" + kName[l] + ") output stream: " + err);
      if (tp.valid && tp.ready) {
        size_t f = stream_pos[l] / kOut[l];
        int c = static_cast<int>(stream_pos[l] % kOut[l]);
        ++stream_pos[l];
        if (f >= n) {
          rep.error(std::string("layer ") + kName[l] + " emitted more outputs than there are vectors");
          continue;
        }
        if (tp.data != vs[f].out[l][c]) {
          bad[f] = 1;
          rep.mismatch(where(vs[f], l, c, "output"), rf::s8(vs[f].out[l][c]), rf::s8(tp.data));
        }
      }
      if (acc_valid(root, l)) {
        size_t f = acc_frame[l];
        int g = acc_group(root, l);
        if (f >= n) {
          rep.error(std::string("layer ") + kName[l] + " produced more accumulators than there are vectors");
          continue;
        }
        if (g != acc_next_group[l]) {
          bad[f] = 1;
          rep.error(std::string("layer ") + kName[l] + ": pass " + std::to_string(g) + " out of order, expected " +
                    std::to_string(acc_next_group[l]));
        }
        for (int lane = 0; lane < kP[l]; ++lane) {
          int c = acc_next_group[l] * kP[l] + lane;
          if (c >= kOut[l]) break;
          int32_t got = acc_lane(root, l, lane);
          int32_t exp = rf::s32(vs[f].acc[l][c]);
          if (got != exp) {
            bad[f] = 1;
            rep.mismatch(where(vs[f], l, c, "accumulator"), exp, got);
          }
        }
        if (++acc_next_group[l] == kGroups[l]) { acc_next_group[l] = 0; ++acc_frame[l]; }
      }
    }
    {
      // FNV-1a over the output beat (logits and class) stands for its data in the rule check.
      uint64_t sig = 0xcbf29ce484222325ULL;
      for (int c = 0; c < kClasses; ++c) sig = (sig ^ rf::get_bits(dut->out_logits_o, c * 8, 8)) * 0x100000001b3ULL;
      sig = (sig ^ rf::get_bits(dut->out_class_o, 0, 32)) * 0x100000001b3ULL;
      std::string err = rule[kLayers].check(dut->out_valid_o, dut->out_ready_i, sig);
      if (!err.empty()) rep.error(std::string("network output: ") + err);
      err = rule[kLayers + 1].check(dut->in_valid_i, dut->in_ready_o, dut->in_data_i);
      if (!err.empty()) rep.error(std::string("testbench source: ") + err);
    }
    if (dut->out_valid_o && !seen_valid) { seen_valid = true; first_valid = cycle; }
    if (dut->out_valid_o && dut->out_ready_i) {
      const Vec& v = vs[done];
      for (int c = 0; c < kClasses; ++c) {
        uint64_t got = rf::get_bits(dut->out_logits_o, c * 8, 8);
        if (got != v.out[kLayers - 1][c]) {
          bad[done] = 1;
          rep.mismatch("vector " + std::to_string(v.index) + " logit " + std::to_string(c), rf::s8(v.out[kLayers - 1][c]), rf::s8(got));
        }
      }
      long got_cls = static_cast<long>(rf::get_bits(dut->out_class_o, 0, 32));
      if (got_cls != v.cls) {
        bad[done] = 1;
        rep.mismatch("vector " + std::to_string(v.index) + " class", v.cls, got_cls);
      }
      out_cycles.push_back(cycle);
      last_out = cycle;
      ++done;
    }

    tick(1);
    if (in_fire) {
      ++beat;
      dut->in_valid_i = 0;
    }
    ++cycle;
    if (cycle - last_out > args.idle_limit && cycle > args.idle_limit) {
      hung = true;
      break;
    }
  }
  const double wall = rf::seconds_since(t0);
  tick.close();
  dut->final();

  if (hung) {
    std::printf("error: no output for %llu cycles after %zu of %zu vectors: the design hangs\n",
                static_cast<unsigned long long>(args.idle_limit), done, n);
    for (size_t i = done; i < n; ++i) bad[i] = 1;
  }
  for (int l = 0; l < kLayers && !hung; ++l) {
    if (stream_pos[l] != n * kOut[l]) {
      rep.error(std::string("layer ") + kName[l] + " emitted " + std::to_string(stream_pos[l]) + " outputs, expected " + std::to_string(n * kOut[l]));
    }
    if (acc_frame[l] != n) {
      rep.error(std::string("layer ") + kName[l] + " requantized " + std::to_string(acc_frame[l]) + " vectors, expected " + std::to_string(n));
    }
  }
  size_t failed = static_cast<size_t>(std::count(bad.begin(), bad.end(), 1));
  // A protocol or structural error that no vector owns fails the run as a whole.
  if (failed == 0 && rep.mismatches > 0) failed = 1;
  // Gaps between the last output beats: up to 8 inferences, the window ratflow's cycle model
  // averages over.
  const size_t gaps = out_cycles.size() >= 2 ? std::min<size_t>(8, out_cycles.size() - 1) : 0;
  uint64_t interval_sum = gaps ? out_cycles.back() - out_cycles[out_cycles.size() - 1 - gaps] : 0;
  std::printf("stats cycles=%llu wall_s=%.6f latency=%llu interval_sum=%llu interval_n=%zu vectors=%zu\n",
              static_cast<unsigned long long>(cycle), wall,
              static_cast<unsigned long long>(seen_valid && seen_in ? first_valid - first_in : 0),
              static_cast<unsigned long long>(interval_sum), gaps, n);
  std::printf("%zu passed, %zu failed\n", n - std::min(failed, n), std::min(failed, n));
  return failed == 0 ? 0 : 1;
}
