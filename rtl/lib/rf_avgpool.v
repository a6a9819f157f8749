// rf_avgpool: average pool with TFLite's exact rounding (AVERAGE_POOL_2D, DESIGN section 5).
// Verilog-2005 (IEEE 1364-2005).
//
// For every output pixel and channel: sum = the raw int8 codes of the valid (non-padding)
// taps, n = their count, v = (sum + n/2)/n if sum > 0 else (sum - n/2)/n with division
// truncating toward zero (= sign(sum) * floor((|sum| + floor(n/2)) / n)), y = clamp(v, LO, HI).
// Input and output share (S, Z). A window with no valid tap (n = 0; TFLite divides by zero
// there) gives v = 0; a generator should refuse such geometries.
//
// Division: q = floor(X / n), X = |sum| + floor(n/2) < 2^XB, is computed exactly as
// q = (X * R[n]) >> T with T = XB + bits(KK) and R[n] = ceil(2^T / n) (Granlund-Montgomery:
// the error X*(R[n]*n - 2^T)/(n*2^T) < 2^(XB-T) <= 1/n keeps the floor exact for every X).
// R is a constant table of KK+1 entries computed at elaboration (no divider, one multiplier
// of XB x (T+1) bits per lane).
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_* : the window stream of rf_window with ORDER = 1 (per pixel, per channel group cf,
//              KK taps of SIMD channels), s_axis_tuser = the window's padding flags (bit 0 is
//              used: all bits of a beat are equal), tlast on the frame's last beat.
//   m_axis_* : one beat per (pixel, cf): SIMD int8 results, channel cf*SIMD + j in bits
//              [j*8 +: 8] (NHWC order); tlast on the frame's last beat.
//   s_axis_tready = !m_axis_tvalid || m_axis_tready; m_axis_tvalid is a register.
//   Reset: rst_ni asynchronous, active low (control state only).
// Cycles: KK per (pixel, cf) (one input beat per cycle); latency 3 cycles from a group's last
//   tap to its output beat.
`default_nettype none
`include "rf_check.vh"

module rf_avgpool #(
  parameter integer C    = 4,     // channels
  parameter integer KK   = 4,     // taps per window (KH*KW)
  parameter integer SIMD = 1,     // channels per beat, divides C
  parameter integer LO   = -128,  // clamp low (int8 code)
  parameter integer HI   = 127    // clamp high (int8 code)
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire [SIMD*8-1:0] s_axis_tdata,
  input  wire [SIMD-1:0]   s_axis_tuser,
  input  wire              s_axis_tvalid,
  output wire              s_axis_tready,
  input  wire              s_axis_tlast,
  output wire [SIMD*8-1:0] m_axis_tdata,
  output wire              m_axis_tvalid,
  input  wire              m_axis_tready,
  output wire              m_axis_tlast
);

`include "rf_functions.vh"

  localparam integer NB = f_ubits(KK);                 // bits of the count n (0..KK)
  localparam integer SB = f_ubits(128 * KK) + 1;       // signed sum bits
  localparam integer XB = f_ubits(128 * KK + KK / 2);  // bits of X = |sum| + n/2
  localparam integer T  = XB + NB;                     // reciprocal scale
  localparam integer RB = T + 1;                       // reciprocal bits (R[1] = 2^T)
  localparam integer TB = f_idx_bits(KK);

  `RF_CHECK(C >= 1 && KK >= 1, g_chk_dims, "rf_avgpool: C and KK must be positive")
  `RF_CHECK(SIMD >= 1 && C % SIMD == 0, g_chk_simd, "rf_avgpool: SIMD must divide C")
  `RF_CHECK(LO >= -128 && LO <= HI && HI <= 127, g_chk_clamp, "rf_avgpool: need -128 <= LO <= HI <= 127")
  `RF_CHECK(T <= 62, g_chk_kk, "rf_avgpool: KK too large for the reciprocal table")

  // Reciprocal table: entry n in bits [n*RB +: RB] = ceil(2^T / n), entry 0 = 0.
  function [(KK+1)*RB-1:0] f_rtab;
    input integer kk;  // table size - 1 (= KK)
    reg [63:0] num, nn;
    reg [63:0] q_unused_hi;  // quotient; it fits RB bits, the high bits are zero
    integer n;
    begin
      f_rtab = {((KK + 1) * RB){1'b0}};
      num = 64'd1 << T;
      for (n = 1; n <= kk; n = n + 1) begin
        nn = {32'd0, n};
        q_unused_hi = (num + nn - 64'd1) / nn;
        f_rtab[n*RB +: RB] = q_unused_hi[RB-1:0];
      end
    end
  endfunction
  localparam [(KK+1)*RB-1:0] RTAB = f_rtab(KK);

  localparam integer KK1 = KK - 1;
  localparam [TB-1:0] T_LAST = KK1[TB-1:0];
  localparam integer LO10_I = LO;
  localparam integer HI10_I = HI;
  localparam [9:0] LO10 = LO10_I[9:0];
  localparam [9:0] HI10 = HI10_I[9:0];

  // ---------------------------------------------------------------------------------------------
  // Stage 1: accumulate the group's taps (sum per lane, valid-tap count).
  // ---------------------------------------------------------------------------------------------
  reg  [TB-1:0]     t_q;
  reg  [SIMD*SB-1:0] sum_q;
  reg  [NB-1:0]     n_q;
  reg               v1_q, tl1_q, v2_q, tl2_q, v3_q, tl3_q;
  wire adv    = ~v3_q | m_axis_tready;
  wire issue  = adv & s_axis_tvalid;
  wire first  = (t_q == {TB{1'b0}});
  wire last_t = (t_q == T_LAST);
  wire valid_tap = ~s_axis_tuser[0];
  assign s_axis_tready = adv;
  generate
    if (SIMD > 1) begin : g_unused_user
      wire unused_user = ^s_axis_tuser[SIMD-1:1];
    end
  endgenerate

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      t_q <= {TB{1'b0}};
    end else if (issue) begin
      t_q <= last_t ? {TB{1'b0}} : t_q + 1'b1;
    end
  end

  always @(posedge clk_i) begin
    if (issue) begin
      n_q   <= (first ? {NB{1'b0}} : n_q) + {{(NB - 1){1'b0}}, valid_tap};
      tl1_q <= s_axis_tlast;
    end
  end

  genvar j;
  generate
    for (j = 0; j < SIMD; j = j + 1) begin : g_sum
      wire [SB-1:0] x_ext = valid_tap ? {{(SB - 8){s_axis_tdata[j*8 + 7]}}, s_axis_tdata[j*8 +: 8]}
                                      : {SB{1'b0}};
      always @(posedge clk_i) begin
        if (issue) begin
          sum_q[j*SB +: SB] <= (first ? {SB{1'b0}} : sum_q[j*SB +: SB]) + x_ext;
        end
      end
    end
  endgenerate

  // ---------------------------------------------------------------------------------------------
  // Stage 2: X = |sum| + n/2 and the reciprocal of n. Stage 3: q = X*R >> T, sign, clamp.
  // ---------------------------------------------------------------------------------------------
  reg [SIMD*XB-1:0] x2_q;
  reg [SIMD-1:0]    neg2_q;
  reg [RB-1:0]      r2_q;
  reg [SIMD*8-1:0]  y3_q;
  wire [NB-1:0] half_n = n_q >> 1;
  wire [SIMD*8-1:0] y_d;

  generate
    for (j = 0; j < SIMD; j = j + 1) begin : g_div
      wire [SB-1:0] s    = sum_q[j*SB +: SB];
      wire          neg  = s[SB-1];
      wire [SB-1:0] mag  = neg ? (~s + 1'b1) : s;                 // |sum| <= 128*KK
      wire [XB-1:0] x_d  = mag[XB-1:0] + {{(XB - NB){1'b0}}, half_n};
      if (SB > XB) begin : g_unused_mag
        wire unused_mag = ^mag[SB-1:XB];
      end
      always @(posedge clk_i) begin
        if (adv & v1_q) begin
          x2_q[j*XB +: XB] <= x_d;
          neg2_q[j]        <= neg;
        end
      end
      // Stage 3 arithmetic.
      wire [XB+RB-1:0] prod = x2_q[j*XB +: XB] * r2_q;
      wire [XB:0] q = prod[XB+RB-1:T];                            // floor(X/n) <= 128
      wire unused_low = ^{prod[T-1:0], q[XB:8]};
      wire [9:0] q10 = {2'b00, q[7:0]};
      wire [9:0] v = neg2_q[j] ? (~q10 + 10'd1) : q10;
      wire over  = $signed(v) > $signed(HI10);
      wire under = $signed(v) < $signed(LO10);
      assign y_d[j*8 +: 8] = over ? HI10[7:0] : under ? LO10[7:0] : v[7:0];
      wire unused_v = ^{v[9:8], HI10[9:8], LO10[9:8]};
    end
  endgenerate

  always @(posedge clk_i) begin
    if (adv & v1_q) begin
      r2_q <= RTAB[n_q*RB +: RB];
    end
    if (adv & v2_q) begin
      y3_q <= y_d;
    end
    if (adv) begin
      tl2_q <= tl1_q;
      tl3_q <= tl2_q;
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
      v2_q <= 1'b0;
      v3_q <= 1'b0;
    end else if (adv) begin
      v1_q <= issue & last_t;
      v2_q <= v1_q;
      v3_q <= v2_q;
    end
  end

  assign m_axis_tvalid = v3_q;
  assign m_axis_tdata  = y3_q;
  assign m_axis_tlast  = tl3_q;

endmodule
