// rf_rescale: one exact rescaler r = rescale(a, m, s) of DESIGN section 1, pipelined.
// Verilog-2005 (IEEE 1364-2005).
//
// Arithmetic (exact for every a_i of A_BITS bits and every m < 2^K_BITS, no saturation):
//   single (ROUNDING = 0): r = (a*m + 2^(s-1)) >> s (floor: ties toward +inf); s = 0: r = a*m.
//   double (ROUNDING = 1): x = SRDHM(a, m << (31-k)) = floor((a*m + 2^(k-1)) / 2^k), then
//     r = x / 2^(s-k) rounded half away from zero (gemmlowp RoundingDivideByPOT); needs s >= k
//     for m > 0. m = 0 gives r = 0 in both modes for any s.
//   No clamp and no zero point: rf_requant and rf_add add those.
// Forms (FORM):
//   0 constant multiplier: m = M, s = S are parameters, the product is a*M with a constant M
//     (synthesis sees a constant multiply); m_i, s_i, d_i are ignored.
//   1 constant CSD: m = M, s = S; the product is the shift-add of M's canonical signed digits
//     (non-adjacent form, computed at elaboration), no multiplier.
//   2 runtime multiplier: m = m_i (K_BITS bits, unsigned), s = s_i (S_MIN <= s_i <= S_MAX).
//   3 runtime CSD: s = s_i, m = sum of DIGITS digit fields of d_i; field j is
//     d_i[j*DB +: DB] = {valid, negative, position[PB-1:0]} with PB = bits of K_BITS
//     (positions 0..K_BITS), DB = PB + 2, value (valid ? (negative ? -1 : 1) << position : 0).
//     The digits must sum to m with 0 <= m < 2^K_BITS (the generator writes m's non-adjacent
//     form; f_naf_pos/f_naf_neg in rf_functions.vh compute it).
// Widths: the output r_o is R_BITS = f_rescale_bits(A_BITS, MB, K_BITS, S or S_MIN, ROUNDING)
//   bits (two's complement), MB = bits of M (constant forms) or K_BITS (runtime forms): exactly
//   the width r can need, derived here and by any parent with the same function.
//
// Timing contract: a pipeline of 2 register stages advanced by en_i (a stall-all enable): the
//   a_i/m_i/s_i/d_i presented in a cycle with en_i high give r_o after the second following
//   edge with en_i high. No handshake and no reset (datapath registers only).
`default_nettype none
`include "rf_check.vh"

module rf_rescale (clk_i, en_i, a_i, m_i, s_i, d_i, r_o);

  parameter integer A_BITS   = 32;  // width of the signed input a_i (bits), 2..64
  parameter integer K_BITS   = 31;  // k: width of the unsigned multiplicand m (bits), 1..31
  parameter integer ROUNDING = 0;   // 0 = single, 1 = double (DESIGN section 1)
  parameter integer FORM     = 0;   // 0 const mul, 1 const CSD, 2 runtime mul, 3 runtime CSD
  parameter integer M        = 0;   // forms 0/1: multiplicand m, 0 <= M < 2^K_BITS
  parameter integer S        = 0;   // forms 0/1: shift s, 0..62 (double with M > 0: S >= K_BITS)
  parameter integer S_MIN    = 0;   // forms 2/3: smallest s_i that occurs (sets the width)
  parameter integer S_MAX    = 62;  // forms 2/3: largest s_i that occurs, <= 62
  parameter integer DIGITS   = 1;   // form 3: digit fields in d_i, >= 1

`include "rf_functions.vh"

  localparam integer RUNTIME = (FORM >= 2) ? 1 : 0;
  localparam integer PB      = f_ubits(K_BITS);                    // digit position bits
  localparam integer DB      = PB + 2;                             // digit field bits
  localparam integer MB      = (FORM >= 2) ? K_BITS : f_ubits(M);  // bits of m (0 for M = 0)
  localparam integer P       = A_BITS + ((MB > 0) ? MB : 1);       // product bits
  localparam integer S_LO    = (FORM >= 2) ? S_MIN : S;
  localparam integer R_BITS  = f_rescale_bits(A_BITS, MB, K_BITS, S_LO, ROUNDING);

  input  wire                   clk_i;
  input  wire                   en_i;
  input  wire [A_BITS-1:0]      a_i;   // signed accumulator
  input  wire [K_BITS-1:0]      m_i;   // form 2
  input  wire [5:0]             s_i;   // forms 2, 3
  input  wire [DIGITS*DB-1:0]   d_i;   // form 3
  output wire [R_BITS-1:0]      r_o;   // signed result

  `RF_CHECK(A_BITS >= 2 && A_BITS <= 64, g_chk_a, "rf_rescale: A_BITS must be in 2..64")
  `RF_CHECK(K_BITS >= 1 && K_BITS <= 31, g_chk_k, "rf_rescale: K_BITS must be in 1..31")
  `RF_CHECK(ROUNDING == 0 || ROUNDING == 1, g_chk_rnd, "rf_rescale: ROUNDING must be 0 (single) or 1 (double)")
  `RF_CHECK(FORM >= 0 && FORM <= 3, g_chk_form, "rf_rescale: FORM must be 0..3")
  `RF_CHECK(RUNTIME == 1 || (M >= 0 && f_ubits(M) <= K_BITS), g_chk_m, "rf_rescale: M must satisfy 0 <= M < 2^K_BITS")
  `RF_CHECK(RUNTIME == 1 || (S >= 0 && S <= 62), g_chk_s, "rf_rescale: S must be in 0..62")
  `RF_CHECK(RUNTIME == 1 || ROUNDING == 0 || M == 0 || S >= K_BITS, g_chk_dbl, "rf_rescale: double rounding needs S >= K_BITS when M > 0")
  `RF_CHECK(RUNTIME == 0 || (S_MIN >= 0 && S_MIN <= S_MAX && S_MAX <= 62), g_chk_srange, "rf_rescale: need 0 <= S_MIN <= S_MAX <= 62")
  `RF_CHECK(FORM != 3 || DIGITS >= 1, g_chk_digits, "rf_rescale: DIGITS must be at least 1")

  // Unused inputs of the chosen form.
  wire unused_inputs = ^{m_i, s_i, d_i};

  generate
    if (RUNTIME == 0 && M == 0) begin : g_zero
      // m = 0: r = 0 for any a and s.
      wire unused_zero = ^{clk_i, en_i, a_i, unused_inputs};
      assign r_o = {R_BITS{1'b0}};
    end else begin : g_rescale
      // ---------------------------------------------------------------------------------------
      // Stage 1: the product a*m, exact in P bits.
      // ---------------------------------------------------------------------------------------
      wire [P-1:0] prod_d;
      if (FORM == 0) begin : g_const_mul
        localparam [MB:0] M_U = M[MB:0];  // M >= 0 as an (MB+1)-bit signed constant
        assign prod_d = $signed(a_i) * $signed(M_U);
      end else if (FORM == 1) begin : g_const_csd
        // Shift-add over M's non-adjacent form, modulo 2^P (exact: a*M fits P bits). The digit
        // masks are constants, so only the non-zero digits become adders.
        localparam [32:0] NAF_P = f_naf_pos(M);
        localparam [32:0] NAF_N = f_naf_neg(M);
        wire [P-1:0] a_ext = {{(P - A_BITS){a_i[A_BITS-1]}}, a_i};
        reg  [P-1:0] acc;
        integer i;
        always @(*) begin
          acc = {P{1'b0}};
          for (i = 0; i <= MB; i = i + 1) begin
            if (NAF_P[i]) acc = acc + (a_ext << i);
            else if (NAF_N[i]) acc = acc - (a_ext << i);
          end
        end
        assign prod_d = acc;
      end else if (FORM == 2) begin : g_var_mul
        assign prod_d = $signed(a_i) * $signed({1'b0, m_i});
      end else begin : g_var_csd
        wire [P-1:0] a_ext = {{(P - A_BITS){a_i[A_BITS-1]}}, a_i};
        reg  [P-1:0] acc;
        integer j;
        always @(*) begin
          acc = {P{1'b0}};
          for (j = 0; j < DIGITS; j = j + 1) begin
            if (d_i[j*DB + PB + 1]) begin
              if (d_i[j*DB + PB]) acc = acc - (a_ext << d_i[j*DB +: PB]);
              else acc = acc + (a_ext << d_i[j*DB +: PB]);
            end
          end
        end
        assign prod_d = acc;
      end

      reg [P-1:0] prod_q;
      reg [5:0]   s1_q;  // runtime forms: the shift that goes with prod_q
      always @(posedge clk_i) begin
        if (en_i) begin
          prod_q <= prod_d;
          s1_q   <= s_i;
        end
      end

      // ---------------------------------------------------------------------------------------
      // Stage 2: rounding shift.
      // ---------------------------------------------------------------------------------------
      wire [R_BITS-1:0] r_d;
      if (RUNTIME == 0 && ROUNDING == 0) begin : g_single_const
        wire unused_s1 = ^s1_q;
        if (S == 0) begin : g_s0
          assign r_d = prod_q;  // R_BITS = P
        end else if (S >= P) begin : g_szero
          wire unused_prod = ^prod_q;
          assign r_d = {R_BITS{1'b0}};
        end else begin : g_shift
          localparam [P:0] RND = {{P{1'b0}}, 1'b1} << (S - 1);  // 2^(S-1)
          wire [P:0] sum = {prod_q[P-1], prod_q} + RND;
          wire unused_low = ^sum[S-1:0];
          assign r_d = sum[P:S];  // R_BITS = P + 1 - S
        end
      end else if (RUNTIME == 0) begin : g_double_const
        wire unused_s1 = ^s1_q;
        localparam integer N = S - K_BITS;
        if (P <= K_BITS) begin : g_xzero
          wire unused_prod = ^prod_q;
          assign r_d = {R_BITS{1'b0}};
        end else begin : g_x
          localparam integer XW = P + 1 - K_BITS;
          localparam [P:0] HALF_K = {{P{1'b0}}, 1'b1} << (K_BITS - 1);  // 2^(k-1)
          wire [P:0] t = {prod_q[P-1], prod_q} + HALF_K;
          wire unused_t = ^t[K_BITS-1:0];
          wire [XW-1:0] x = t[P:K_BITS];
          if (N <= 0) begin : g_n0
            // N = 0: x passes (R_BITS = XW). (N < 0 is refused above; this keeps the
            // elaboration legal so the refusal message is the one every tool prints.)
            assign r_d = x;
          end else if (N > XW) begin : g_nzero
            wire unused_x = ^x;
            assign r_d = {R_BITS{1'b0}};
          end else begin : g_n
            // x / 2^N rounded half away from zero = (x + 2^(N-1) - [x < 0]) >> N.
            localparam [XW:0] HALF_N = {{XW{1'b0}}, 1'b1} << (N - 1);  // 2^(N-1)
            wire [XW:0] u = {x[XW-1], x} + HALF_N - {{XW{1'b0}}, x[XW-1]};
            wire unused_u = ^u[N-1:0];
            assign r_d = u[XW:N];  // R_BITS = XW + 1 - N
          end
        end
      end else if (ROUNDING == 0) begin : g_single_var
        localparam integer SW = f_max(P, S_MAX) + 1;
        wire [SW-1:0] one = {{(SW - 1){1'b0}}, 1'b1};
        wire [SW-1:0] sum = {{(SW - P){prod_q[P-1]}}, prod_q} + ((one << s1_q) >> 1);
        wire [SW-1:0] r_full = $signed(sum) >>> s1_q;
        assign r_d = r_full[R_BITS-1:0];
        if (R_BITS < SW) begin : g_unused_top
          wire unused_top = ^r_full[SW-1:R_BITS];
        end
      end else begin : g_double_var
        localparam integer XW = P + 1 - K_BITS;  // = A_BITS + 1
        localparam integer NMAX = (S_MAX > K_BITS) ? S_MAX - K_BITS : 0;
        localparam integer UW = f_max(XW, NMAX) + 1;
        localparam [P:0] HALF_K = {{P{1'b0}}, 1'b1} << (K_BITS - 1);  // 2^(k-1)
        localparam [5:0] K6 = K_BITS[5:0];
        wire [P:0] t = {prod_q[P-1], prod_q} + HALF_K;
        wire unused_t = ^t[K_BITS-1:0];
        wire [XW-1:0] x = t[P:K_BITS];
        // n = s - k; an s < k occurs only with m = 0 (x = 0), where any n gives 0.
        wire [5:0] n = (s1_q >= K6) ? s1_q - K6 : 6'd0;
        wire [UW-1:0] one = {{(UW - 1){1'b0}}, 1'b1};
        wire [UW-1:0] u = {{(UW - XW){x[XW-1]}}, x} + ((one << n) >> 1)
                        - {{(UW - 1){1'b0}}, x[XW-1] & (n != 6'd0)};
        wire [UW-1:0] r_full = $signed(u) >>> n;
        assign r_d = r_full[R_BITS-1:0];
        if (R_BITS < UW) begin : g_unused_top
          wire unused_top = ^r_full[UW-1:R_BITS];
        end
      end

      reg [R_BITS-1:0] r_q;
      always @(posedge clk_i) begin
        if (en_i) begin
          r_q <= r_d;
        end
      end
      assign r_o = r_q;
    end
  endgenerate

endmodule
