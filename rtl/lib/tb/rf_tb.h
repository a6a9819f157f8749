// Unit-test support for the ratflow RTL library (rtl/lib): command line, a seeded random
// stream (SplitMix64, the generator ratflow uses), arbitrary-width bit vectors and their
// transfer to and from Verilator's packed signal types, AXI-Stream sources with random bubbles
// and sinks with random stalls, the AXI-Stream rule checker, and the mismatch reporter.
//
// Every harness includes this file, is built with its design's parameters as -D macros (the
// same values test.sh passes to Verilator as -G), computes its expected values with an exact
// reference model of its own, and ends with one line "PASS <name>: ..." (exit 0) or
// "FAIL <name>: ..." (exit 1).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <string>
#include <vector>

#include "verilated.h"

namespace rf {

[[noreturn]] inline void die(const std::string& msg) {
  std::fprintf(stderr, "testbench error: %s\n", msg.c_str());
  std::exit(2);
}

// ---------------------------------------------------------------------------------------------
// Command line: --seed S --frames N --bubble P --stall P --max-report N --idle-limit C
// ---------------------------------------------------------------------------------------------
struct Args {
  uint64_t seed = 1;
  long frames = 0;  // 0: the harness's default
  double bubble = 0.25;
  double stall = 0.25;
  long max_report = 8;
  uint64_t idle_limit = 200000;
};

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + k);
      return argv[++i];
    };
    if (k == "--seed") a.seed = std::strtoull(val().c_str(), nullptr, 10);
    else if (k == "--frames") a.frames = std::atol(val().c_str());
    else if (k == "--bubble") a.bubble = std::atof(val().c_str());
    else if (k == "--stall") a.stall = std::atof(val().c_str());
    else if (k == "--max-report") a.max_report = std::atol(val().c_str());
    else if (k == "--idle-limit") a.idle_limit = std::strtoull(val().c_str(), nullptr, 10);
    else if (k.rfind("+verilator", 0) == 0) continue;
    else die("unknown option " + k);
  }
  if (!(a.bubble >= 0.0 && a.bubble < 1.0)) die("--bubble must be in [0, 1)");
  if (!(a.stall >= 0.0 && a.stall < 1.0)) die("--stall must be in [0, 1)");
  return a;
}

// ---------------------------------------------------------------------------------------------
// SplitMix64.
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
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  bool chance(double p) { return p > 0.0 && unit() < p; }
  // Uniform integer in [lo, hi] (inclusive).
  int64_t range(int64_t lo, int64_t hi) {
    uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(span == 0 ? next() : next() % span);
  }
  int8_t i8() { return static_cast<int8_t>(next() & 0xff); }
};

// ---------------------------------------------------------------------------------------------
// Bit vectors of any width (64-bit limbs, bit 0 = limb 0 bit 0).
// ---------------------------------------------------------------------------------------------
struct Bits {
  std::vector<uint64_t> w;
  Bits() = default;
  explicit Bits(int width) : w(static_cast<size_t>((width + 63) / 64), 0) {}
  void set(int lsb, int width, uint64_t v) {
    for (int b = 0; b < width; ++b) {
      int bit = lsb + b;
      uint64_t m = 1ULL << (bit % 64);
      if ((v >> b) & 1ULL) w.at(static_cast<size_t>(bit / 64)) |= m;
      else w.at(static_cast<size_t>(bit / 64)) &= ~m;
    }
  }
  uint64_t get(int lsb, int width) const {
    uint64_t out = 0;
    for (int b = 0; b < width; ++b) {
      int bit = lsb + b;
      out |= ((w.at(static_cast<size_t>(bit / 64)) >> (bit % 64)) & 1ULL) << b;
    }
    return out;
  }
  // Two's complement field as int64 (width <= 64).
  int64_t sget(int lsb, int width) const {
    uint64_t v = get(lsb, width);
    if (width < 64 && ((v >> (width - 1)) & 1ULL)) v |= ~0ULL << width;
    return static_cast<int64_t>(v);
  }
  bool operator==(const Bits& o) const { return w == o.w; }
  bool operator!=(const Bits& o) const { return w != o.w; }
  std::string hex(int width) const {
    std::string s;
    for (int d = (width + 3) / 4 - 1; d >= 0; --d) {
      int n = static_cast<int>(get(d * 4, (d * 4 + 4 <= width) ? 4 : width - d * 4));
      s += "0123456789abcdef"[n];
    }
    return s;
  }
};

// Verilator keeps a port of up to 8/16/32/64 bits in an integer, wider ones in VlWide<N>.
template <typename T>
inline void put(T& sig, const Bits& b, int width) {
  sig = static_cast<T>(b.get(0, width < 64 ? width : 64));
}
template <std::size_t N>
inline void put(VlWide<N>& sig, const Bits& b, int width) {
  for (std::size_t i = 0; i < N; ++i) {
    int lsb = static_cast<int>(i) * 32;
    int wd = width - lsb;
    if (wd > 32) wd = 32;
    sig.at(i) = wd > 0 ? static_cast<uint32_t>(b.get(lsb, wd)) : 0U;
  }
}
template <typename T>
inline Bits take(const T& sig, int width) {
  Bits b(width);
  b.set(0, width < 64 ? width : 64, static_cast<uint64_t>(sig));
  return b;
}
template <std::size_t N>
inline Bits take(const VlWide<N>& sig, int width) {
  Bits b(width);
  for (std::size_t i = 0; i < N; ++i) {
    int lsb = static_cast<int>(i) * 32;
    int wd = width - lsb;
    if (wd > 32) wd = 32;
    if (wd > 0) b.set(lsb, wd, sig.at(i));
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Streams.
// ---------------------------------------------------------------------------------------------
struct Beat {
  Bits data;
  bool last = false;
  uint64_t user = 0;
};

// A source with random bubbles: once it offers a beat it keeps offering it until it moves.
struct Source {
  std::deque<Beat> q;
  bool valid = false;
  Beat cur;
  // Called before the cycle's evaluation.
  void offer(Rng& rng, double bubble) {
    if (!valid && !q.empty() && !rng.chance(bubble)) {
      cur = q.front();
      q.pop_front();
      valid = true;
    }
  }
  bool idle() const { return !valid && q.empty(); }
};

// AXI-Stream rule checker for an observed stream: once tvalid is high without tready, tvalid
// stays high and tdata/tlast/tuser do not change until the transfer.
struct StreamRule {
  bool pending = false;
  Bits data;
  bool last = false;
  uint64_t user = 0;
  std::string check(bool valid, bool ready, const Bits& d, bool l, uint64_t u) {
    std::string err;
    if (pending) {
      if (!valid) err = "tvalid dropped before the transfer";
      else if (d != data || l != last || u != user) err = "payload changed while tvalid && !tready";
    }
    pending = valid && !ready;
    data = d;
    last = l;
    user = u;
    return err;
  }
};

struct Report {
  std::string name;
  long max_report;
  long errors = 0;
  long checked = 0;
  Report(std::string n, long max) : name(std::move(n)), max_report(max) {}
  void fail(const std::string& msg) {
    ++errors;
    if (errors <= max_report) std::printf("mismatch: %s: %s\n", name.c_str(), msg.c_str());
    else if (errors == max_report + 1) std::printf("(further mismatches counted, not printed)\n");
  }
  // Prints the summary line and returns the exit status.
  int finish(const std::string& detail) {
    if (errors == 0) {
      std::printf("PASS %s: %s\n", name.c_str(), detail.c_str());
      return 0;
    }
    std::printf("FAIL %s: %ld mismatches; %s\n", name.c_str(), errors, detail.c_str());
    return 1;
  }
};

inline std::string hex2(int64_t v) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(v) & 0xffU);
  return buf;
}

// Writes a $readmemh image: one word per line, `digits` hex digits each.
inline void write_hex(const std::string& path, const std::vector<Bits>& words, int width) {
  std::ofstream f(path);
  if (!f) die("cannot write " + path);
  f << "// rtl/lib unit test ROM image: " << words.size() << " words of " << width << " bits\n";
  for (const auto& w : words) f << w.hex(width) << "\n";
}

}  // namespace rf
