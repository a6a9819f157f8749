// ratflow Verilator testbench support: argument parsing, the hex vector readers, a seeded
// random stream for bubbles and stalls, access to Verilator's packed signal types, and the
// mismatch reporter. Included by the generated harnesses (templates/tb/*.cpp); no expected
// value is ever computed here: every expectation comes from the vector files.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "verilated.h"
#if VM_TRACE
#include "verilated_fst_c.h"
#endif
#include <memory>

namespace rf {

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------
struct Args {
  std::string vectors;
  std::string trace;
  uint64_t seed = 1;
  double bubble = 0.0;  // probability that the source withholds a beat in a cycle
  double stall = 0.0;   // probability that the sink drops ready in a cycle
  long max_report = 10;
  uint64_t idle_limit = 1000000;  // cycles without an output beat before declaring a hang
};

[[noreturn]] inline void die(const std::string& msg) {
  std::fprintf(stderr, "testbench error: %s\n", msg.c_str());
  std::fflush(stdout);
  std::exit(2);
}

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + k);
      return argv[++i];
    };
    if (k == "--vectors") a.vectors = val();
    else if (k == "--trace") a.trace = val();
    else if (k == "--seed") a.seed = std::strtoull(val().c_str(), nullptr, 10);
    else if (k == "--bubble") a.bubble = std::atof(val().c_str());
    else if (k == "--stall") a.stall = std::atof(val().c_str());
    else if (k == "--max-report") a.max_report = std::atol(val().c_str());
    else if (k == "--idle-limit") a.idle_limit = std::strtoull(val().c_str(), nullptr, 10);
    else if (k.rfind("+verilator", 0) == 0) continue;
    else die("unknown option " + k);
  }
  if (a.vectors.empty()) die("--vectors FILE is required");
  if (!(a.bubble >= 0.0 && a.bubble < 1.0)) die("--bubble must be in [0, 1)");
  if (!(a.stall >= 0.0 && a.stall < 1.0)) die("--stall must be in [0, 1)");
  return a;
}

// ---------------------------------------------------------------------------------------------
// SplitMix64: the same generator ratflow uses, so a seed means the same stall pattern anywhere.
// ---------------------------------------------------------------------------------------------
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ^ 0x5851f42d4c957f2dULL) {}
  uint64_t next() {
    s += 0x9e3779b97f4a7c15ULL;
    uint64_t z = s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double unit() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
  bool chance(double p) { return p > 0.0 && unit() < p; }
};

// ---------------------------------------------------------------------------------------------
// Packed signals: Verilator stores a port or signal of up to 8/16/32/64 bits in an integer and
// wider ones in VlWide<words>. These read or write 8- and 32-bit fields at any position.
// ---------------------------------------------------------------------------------------------
inline uint64_t field(uint64_t v, int lsb, int width) {
  uint64_t x = lsb >= 64 ? 0 : v >> lsb;
  return width >= 64 ? x : x & ((1ULL << width) - 1);
}
inline uint64_t get_bits(CData v, int lsb, int width) { return field(v, lsb, width); }
inline uint64_t get_bits(SData v, int lsb, int width) { return field(v, lsb, width); }
inline uint64_t get_bits(IData v, int lsb, int width) { return field(v, lsb, width); }
inline uint64_t get_bits(QData v, int lsb, int width) { return field(v, lsb, width); }
// Word-wise (a field of up to 64 bits spans at most three 32-bit words): a harness reads
// every observed lane of every stream each cycle, so this stays out of the bit-by-bit loop
// that made wide ports the dominant cost of simulation.
template <std::size_t N>
inline uint64_t get_bits(const VlWide<N>& v, int lsb, int width) {
  const std::size_t w0 = static_cast<std::size_t>(lsb) >> 5;
  const int sh = lsb & 31;
  auto word = [&](std::size_t i) -> uint64_t { return i < N ? static_cast<uint64_t>(v.at(i)) : 0; };
  uint64_t x = (word(w0) | (word(w0 + 1) << 32)) >> sh;
  if (sh != 0 && sh + width > 64) x |= word(w0 + 2) << (64 - sh);
  return width >= 64 ? x : x & ((1ULL << width) - 1);
}

template <typename T>
inline void put_bits(T& sig, int lsb, int width, uint64_t value) {
  uint64_t mask = width >= 64 ? ~0ULL : ((1ULL << width) - 1);
  uint64_t cur = static_cast<uint64_t>(sig);
  cur &= ~(mask << lsb);
  cur |= (value & mask) << lsb;
  sig = static_cast<T>(cur);
}
template <std::size_t N>
inline void put_bits(VlWide<N>& sig, int lsb, int width, uint64_t value) {
  for (int b = 0; b < width; ++b) {
    int bit = lsb + b;
    uint32_t m = 1U << (bit % 32);
    if ((value >> b) & 1U) sig.at(bit / 32) |= m;
    else sig.at(bit / 32) &= ~m;
  }
}

// ---------------------------------------------------------------------------------------------
// Hex vector files: whitespace-separated tokens, '#' starts a comment line.
// ---------------------------------------------------------------------------------------------
class Tokens {
 public:
  explicit Tokens(const std::string& path) : path_(path), in_(path) {
    if (!in_) die("cannot open " + path);
  }
  // Pushes a token back: the next call to next() returns it.
  void unget(const std::string& tok) { pushed_ = tok; has_pushed_ = true; }
  bool next(std::string& tok) {
    if (has_pushed_) {
      has_pushed_ = false;
      tok = pushed_;
      return true;
    }
    while (true) {
      if (pos_ < line_.size()) {
        size_t start = line_.find_first_not_of(" \t\r", pos_);
        if (start != std::string::npos) {
          size_t end = line_.find_first_of(" \t\r", start);
          if (end == std::string::npos) end = line_.size();
          tok = line_.substr(start, end - start);
          pos_ = end;
          return true;
        }
      }
      if (!std::getline(in_, line_)) return false;
      ++lineno_;
      pos_ = 0;
      if (!line_.empty() && line_[0] == '#') line_.clear();
    }
  }
  std::string need(const char* what) {
    std::string t;
    if (!next(t)) fail(std::string("unexpected end of file, expected ") + what);
    return t;
  }
  long number(const char* what) {
    std::string t = need(what);
    char* end = nullptr;
    long v = std::strtol(t.c_str(), &end, 10);
    if (end == t.c_str() || *end != '\0') fail(std::string("expected ") + what + ", got " + t);
    return v;
  }
  void expect(const char* tag) {
    std::string t = need(tag);
    if (t != tag) fail(std::string("expected ") + tag + ", got " + t);
  }
  // `count` fixed-width hex fields of `digits` digits each, concatenated in one token.
  // "x" digits mark a don't-care field (returned with ok = false).
  void hex_fields(int count, int digits, std::vector<uint64_t>& out, std::vector<char>* ok,
                  const char* what) {
    std::string t = need(what);
    if (static_cast<int>(t.size()) != count * digits)
      fail(std::string(what) + ": expected " + std::to_string(count * digits) + " hex digits, got " +
           std::to_string(t.size()));
    out.resize(count);
    if (ok) ok->assign(count, 1);
    for (int i = 0; i < count; ++i) {
      uint64_t v = 0;
      bool dont_care = false;
      for (int d = 0; d < digits; ++d) {
        char c = t[i * digits + d];
        int x;
        if (c >= '0' && c <= '9') x = c - '0';
        else if (c >= 'a' && c <= 'f') x = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') x = c - 'A' + 10;
        else if (c == 'x' && ok) { dont_care = true; x = 0; }
        else fail(std::string(what) + ": bad hex digit");
        v = (v << 4) | static_cast<uint64_t>(x);
      }
      out[i] = v;
      if (dont_care) (*ok)[i] = 0;
    }
  }
  [[noreturn]] void fail(const std::string& msg) {
    die(path_ + ":" + std::to_string(lineno_) + ": " + msg);
  }

 private:
  std::string path_;
  std::ifstream in_;
  std::string line_;
  size_t pos_ = 0;
  long lineno_ = 0;
  std::string pushed_;
  bool has_pushed_ = false;
};

// Drives `clk_i` of a design: `tick(0)` / `tick(1)` evaluate it, and when the build has
// tracing (VM_TRACE) and a path was given, every edge goes to an FST waveform.
template <typename Dut>
class Clock {
 public:
  Clock(VerilatedContext* ctx, Dut* dut, const std::string& trace) : dut_(dut) {
#if VM_TRACE
    if (!trace.empty()) {
      ctx->traceEverOn(true);
      tfp_ = std::make_unique<VerilatedFstC>();
      dut->trace(tfp_.get(), 99);
      tfp_->open(trace.c_str());
    }
#else
    (void)ctx;
    (void)trace;
#endif
  }
  void operator()(int clk) {
    dut_->clk_i = static_cast<CData>(clk);
    dut_->eval();
#if VM_TRACE
    if (tfp_) tfp_->dump(time_);
#endif
    ++time_;
  }
  // Flushes the waveform (before `final()`).
  void close() {
#if VM_TRACE
    if (tfp_) tfp_->close();
    tfp_.reset();
#endif
  }
  ~Clock() { close(); }

 private:
  Dut* dut_;
  uint64_t time_ = 0;
#if VM_TRACE
  std::unique_ptr<VerilatedFstC> tfp_;
#endif
};

inline int8_t s8(uint64_t v) { return static_cast<int8_t>(static_cast<uint8_t>(v)); }
inline int32_t s32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }
// A `bits`-wide two's complement field (bits <= 32) as a signed 32-bit value.
inline int32_t sext32(uint64_t v, int bits) {
  uint64_t sign = 1ULL << (bits - 1);
  uint64_t x = v & ((sign << 1) - 1);
  return static_cast<int32_t>(static_cast<int64_t>(x ^ sign) - static_cast<int64_t>(sign));
}

// ---------------------------------------------------------------------------------------------
// Mismatch reporting: the first few are printed in full, all are counted.
// ---------------------------------------------------------------------------------------------
struct Report {
  long max_report;
  long mismatches = 0;
  explicit Report(long max) : max_report(max) {}
  void mismatch(const std::string& where, long long expected, long long got) {
    ++mismatches;
    if (mismatches <= max_report) {
      std::printf("mismatch: %s: expected %lld, got %lld\n", where.c_str(), expected, got);
    } else if (mismatches == max_report + 1) {
      std::printf("(further mismatches are counted, not printed)\n");
    }
  }
  void error(const std::string& msg) {
    ++mismatches;
    if (mismatches <= max_report) std::printf("error: %s\n", msg.c_str());
  }
};

// AXI-Stream source/sink rule checker for one observed stream: once valid is high without
// ready, valid must stay high and data must not change until the transfer.
struct StreamRule {
  bool pending = false;
  uint64_t data = 0;
  // Returns an empty string when the rule holds this cycle.
  std::string check(bool valid, bool ready, uint64_t d) {
    std::string err;
    if (pending) {
      if (!valid) err = "valid dropped before the transfer";
      else if (d != data) err = "data changed while valid && !ready";
    }
    pending = valid && !ready;
    data = d;
    return err;
  }
};

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace rf
