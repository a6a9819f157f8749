// rf_functions.vh: constant functions shared by the ratflow RTL library (Verilog-2005).
// Included *inside* a module body (Verilog-2005 functions are module items), so every module
// that needs them derives its widths with the same formulas as the modules it instantiates.
// All are used only in constant expressions (parameters, localparams, generate conditions).

// Larger of two integers.
function integer f_max;
  input integer a;
  input integer b;
  begin
    f_max = (a > b) ? a : b;
  end
endfunction

// Bits of an unsigned value v >= 0 (0 for v = 0): v < 2^f_ubits(v).
function integer f_ubits;
  input integer v;
  integer t;
  begin
    f_ubits = 0;
    for (t = v; t > 0; t = t / 2) f_ubits = f_ubits + 1;
  end
endfunction

// Width of a counter or index that takes the values 0..n-1 (at least 1 bit).
function integer f_idx_bits;
  input integer n;
  begin
    f_idx_bits = (n > 1) ? f_ubits(n - 1) : 1;
  end
endfunction

// Exact width of rescale(a, m, s) (DESIGN section 1) for a signed `a` of `abits` bits, an
// unsigned m < 2^mb (mb = 0: m = 0), k-bit rescaler, the smallest shift `s_lo` the unit sees,
// single (dbl = 0) or double (dbl = 1) rounding. The product a*m fits p = abits + mb bits and
// lies strictly inside +-2^(p-1).
//   single: r = floor((a*m + 2^(s-1)) / 2^s) lies in [-2^(p-1-s), 2^(p-1-s)] for 1 <= s < p
//           (p - s + 1 bits); r = a*m for s = 0 (p bits); r = 0 for s >= p.
//   double: x = floor((a*m + 2^(k-1)) / 2^k) lies in [-2^(p-1-k), 2^(p-1-k)] (xw = p - k + 1
//           bits; x = 0 when p <= k); r = x / 2^n rounded half away from zero, n = s - k,
//           needs xw - n + 1 bits for 1 <= n <= xw (r in {-1, 0} at n = xw), r = 0 beyond.
function integer f_rescale_bits;
  input integer abits;
  input integer mb;
  input integer k;
  input integer s_lo;
  input integer dbl;
  integer p, xw, n;
  begin
    p = abits + mb;
    if (mb == 0) begin
      f_rescale_bits = 1;
    end else if (dbl == 0) begin
      if (s_lo == 0) f_rescale_bits = p;
      else if (s_lo >= p) f_rescale_bits = 1;
      else f_rescale_bits = p + 1 - s_lo;
    end else begin
      xw = (p > k) ? p + 1 - k : 1;
      n = (s_lo > k) ? s_lo - k : 0;
      if (p <= k) f_rescale_bits = 1;
      else if (n == 0) f_rescale_bits = xw;
      else if (n > xw) f_rescale_bits = 1;
      else f_rescale_bits = xw + 1 - n;
    end
  end
endfunction

// Non-adjacent form (canonical signed digits) of 0 <= m < 2^31: m = sum_i (pos[i] - neg[i]) 2^i
// with no two adjacent non-zero digits; the top digit is at most at bit f_ubits(m).
function [32:0] f_naf_pos;
  input integer m;
  reg [33:0] x;
  integer i;
  begin
    x = {2'b00, m};
    f_naf_pos = 33'd0;
    for (i = 0; i < 33; i = i + 1) begin
      if (x[0] && !x[1]) begin
        f_naf_pos[i] = 1'b1;
        x = x - 34'd1;
      end else if (x[0]) begin
        x = x + 34'd1;
      end
      x = x >> 1;
    end
  end
endfunction

function [32:0] f_naf_neg;
  input integer m;
  reg [33:0] x;
  integer i;
  begin
    x = {2'b00, m};
    f_naf_neg = 33'd0;
    for (i = 0; i < 33; i = i + 1) begin
      if (x[0] && x[1]) begin
        f_naf_neg[i] = 1'b1;
        x = x + 34'd1;
      end else if (x[0]) begin
        x = x - 34'd1;
      end
      x = x >> 1;
    end
  end
endfunction
