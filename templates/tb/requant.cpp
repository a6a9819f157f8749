{{ header }}
//
// Verilator harness for requantizer units alone: feeds each unit the rows of the vector file
// (group, one accumulator per lane) with random bubbles, and checks every lane's int8 result,
// and that it arrives exactly `latency` cycles later, against the file's expected values (from
// ratflow's quant::Requant::apply). Last line: "N passed, M failed" over accumulators.
//
// Usage: Vtb --vectors FILE [--seed S] [--bubble P] [--max-report N] [--trace OUT.fst]
#include "V{{ module }}.h"
#include "ratflow_tb.h"

#include <deque>
#include <memory>

namespace {

constexpr int kUnits = {{ units.len() }};
const int kP[kUnits] = { {{ ps }} };
const int kGroups[kUnits] = { {{ groups }} };
const int kChannels[kUnits] = { {{ channels }} };
const int kLatency[kUnits] = { {{ latencies }} };
const char* const kLabel[kUnits] = { {{ labels }} };

struct Row {
  int group;
  std::vector<uint64_t> acc;
  std::vector<uint64_t> exp;
  std::vector<char> check;
};

void drive(V{{ module }}* d, int u, bool valid, const Row* r) {
  switch (u) {
{%- for u in units %}
    case {{ u.index }}:
      d->u{{ u.index }}_valid_i = valid ? 1 : 0;
      if (r) {
{%- if u.groups > 1 %}
        rf::put_bits(d->u{{ u.index }}_group_i, 0, 32, static_cast<uint64_t>(r->group));
{%- endif %}
        for (int lane = 0; lane < {{ u.p }}; ++lane) rf::put_bits(d->u{{ u.index }}_acc_i, lane * {{ u.acc_bits }}, {{ u.acc_bits }}, r->acc[lane]);
      }
      break;
{%- endfor %}
    default: rf::die("bad unit");
  }
}
bool out_valid(const V{{ module }}* d, int u) {
  switch (u) {
{%- for u in units %}
    case {{ u.index }}: return d->u{{ u.index }}_valid_o != 0;
{%- endfor %}
    default: rf::die("bad unit");
  }
}
uint64_t out_lane(const V{{ module }}* d, int u, int lane) {
  switch (u) {
{%- for u in units %}
    case {{ u.index }}: return rf::get_bits(d->u{{ u.index }}_q_o, lane * 8, 8);
{%- endfor %}
    default: rf::die("bad unit");
  }
}

}  // namespace

int main(int argc, char** argv) {
  Verilated::commandArgs(argc, argv);
  rf::Args args = rf::parse_args(argc, argv);
  rf::Tokens t(args.vectors);
  t.expect("ratflow-requant");
  if (t.number("format version") != 1) t.fail("unsupported version");
  t.expect("units");
  if (t.number("unit count") != kUnits) t.fail("unit count differs from the wrapper");
  for (int u = 0; u < kUnits; ++u) {
    t.expect("unit");
    if (t.number("unit") != u || t.number("lanes") != kP[u] || t.number("groups") != kGroups[u] ||
        t.number("channels") != kChannels[u] || t.number("latency") != kLatency[u])
      t.fail("unit header differs from the wrapper");
  }
  t.expect("rows");
  long nrows = t.number("row count");
  std::vector<std::vector<Row>> rows(kUnits);
  for (long i = 0; i < nrows; ++i) {
    int u = static_cast<int>(t.number("unit"));
    if (u < 0 || u >= kUnits) t.fail("bad unit");
    Row r;
    r.group = static_cast<int>(t.number("group"));
    if (r.group < 0 || r.group >= kGroups[u]) t.fail("bad group");
    t.hex_fields(kP[u], 8, r.acc, nullptr, "accumulators");
    t.hex_fields(kP[u], 2, r.exp, &r.check, "expected outputs");
    rows[u].push_back(std::move(r));
  }

  rf::Rng rng(args.seed);
  rf::Report rep(args.max_report);
  auto ctx = std::make_unique<VerilatedContext>();
  auto dut = std::make_unique<V{{ module }}>(ctx.get());
  rf::Clock<V{{ module }}> tick(ctx.get(), dut.get(), args.trace);
  dut->rst_ni = 0;
  for (int u = 0; u < kUnits; ++u) drive(dut.get(), u, false, nullptr);
  for (int i = 0; i < 4; ++i) { tick(0); tick(1); }
  dut->rst_ni = 1;

  struct Flight { size_t row; uint64_t cycle; };
  std::vector<std::deque<Flight>> flight(kUnits);
  std::vector<size_t> next(kUnits, 0);
  long passed = 0, failed = 0;
  uint64_t cycle = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto busy = [&]() {
    for (int u = 0; u < kUnits; ++u)
      if (next[u] < rows[u].size() || !flight[u].empty()) return true;
    return false;
  };
  while (busy()) {
    std::vector<char> go(kUnits, 0);
    for (int u = 0; u < kUnits; ++u) {
      go[u] = next[u] < rows[u].size() && !rng.chance(args.bubble);
      drive(dut.get(), u, go[u], go[u] ? &rows[u][next[u]] : nullptr);
    }
    tick(0);
    for (int u = 0; u < kUnits; ++u) {
      if (!out_valid(dut.get(), u)) continue;
      if (flight[u].empty()) {
        rep.error("unit " + std::to_string(u) + ": a result without an input");
        ++failed;
        continue;
      }
      Flight f = flight[u].front();
      flight[u].pop_front();
      if (cycle - f.cycle != static_cast<uint64_t>(kLatency[u])) {
        rep.error("unit " + std::to_string(u) + ": result after " + std::to_string(cycle - f.cycle) +
                  " cycles, the latency is " + std::to_string(kLatency[u]));
        ++failed;
      }
      const Row& r = rows[u][f.row];
      for (int lane = 0; lane < kP[u]; ++lane) {
        if (!r.check[lane]) continue;
        uint64_t got = out_lane(dut.get(), u, lane);
        if (got == r.exp[lane]) {
          ++passed;
        } else {
          ++failed;
          int c = r.group * kP[u] + lane;
          rep.mismatch("unit " + std::to_string(u) + " (" + kLabel[u] + ") channel " + std::to_string(c) +
                           " acc " + std::to_string(rf::s32(r.acc[lane])),
                       rf::s8(r.exp[lane]), rf::s8(got));
        }
      }
    }
    // Rows driven this cycle enter the pipeline at this clock edge.
    for (int u = 0; u < kUnits; ++u)
      if (go[u]) flight[u].push_back(Flight{next[u]++, cycle});
    tick(1);
    ++cycle;
    for (int u = 0; u < kUnits; ++u) {
      if (!flight[u].empty() && cycle - flight[u].front().cycle > static_cast<uint64_t>(kLatency[u]) + 1) {
        rep.error("unit " + std::to_string(u) + ": no result " + std::to_string(kLatency[u]) + " cycles after an input");
        ++failed;
        flight[u].pop_front();
      }
    }
  }
  const double wall = rf::seconds_since(t0);
  tick.close();
  dut->final();
  std::printf("stats cycles=%llu wall_s=%.6f\n", static_cast<unsigned long long>(cycle), wall);
  std::printf("%ld passed, %ld failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
