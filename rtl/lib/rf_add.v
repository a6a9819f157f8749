// rf_add: element-wise ADD of two int8 streams of equal shape (TFLite ADD, DESIGN section 5).
// Verilog-2005 (IEEE 1364-2005).
//
// Per element:  a_i = rescale((q_i - Z_i) * 2^LEFT_SHIFT, M_i, S_i)   (i = 1, 2)
//               y   = clamp(rescale(a_1 + a_2, MO, SO) + ZOUT, LO, HI)
// with DESIGN section 1's rescale (ROUNDING single or double for all three, k = K_BITS), all
// exact: every width is derived with f_rescale_bits, so nothing saturates or wraps (TFLite
// computes in int32; for every model TFLite accepts the values coincide). The three rescalers
// are per-tensor constants (FORM 0: constant multipliers; FORM 1: CSD shift-adds).
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s0_axis_* / s1_axis_* : the two operands q_1 / q_2, LANES int8 codes per beat (element l in
//              bits [l*8 +: 8]), same order and framing. A beat pair moves together:
//              s0_axis_tready = s1_axis_tvalid && advance, s1_axis_tready = s0_axis_tvalid &&
//              advance, advance = !m_axis_tvalid || m_axis_tready (the other operand's tvalid
//              is a register in every library unit, so no combinational loop can form).
//   m_axis_* : LANES int8 results per beat; tlast = s0_axis_tlast of the pair. m_axis_tvalid
//              is a register.
//   Latency 6 cycles (input register, 2 stages per rescaler stage x 2, saturation); one beat
//   per cycle. Reset: rst_ni asynchronous, active low (control state only).
`default_nettype none
`include "rf_check.vh"

module rf_add #(
  parameter integer LANES      = 1,     // elements per beat
  parameter integer Z1         = 0,     // zero point of input 1 (int8 code)
  parameter integer Z2         = 0,     // zero point of input 2 (int8 code)
  parameter integer ZOUT       = 0,     // output zero point (int8 code)
  parameter integer LEFT_SHIFT = 20,    // TFLite's left_shift (bits), 0..40
  parameter integer K_BITS     = 31,    // k of the three multiplicands (bits), 1..31
  parameter integer ROUNDING   = 0,     // 0 single, 1 double (all three rescales)
  parameter integer FORM       = 0,     // 0 constant multipliers, 1 constant CSD shift-adds
  parameter integer M1         = 0,     // multiplicand of input 1, 0 <= M1 < 2^K_BITS
  parameter integer S1         = 0,     // shift of input 1, 0..62
  parameter integer M2         = 0,     // multiplicand of input 2
  parameter integer S2         = 0,     // shift of input 2
  parameter integer MO         = 0,     // output multiplicand
  parameter integer SO         = 0,     // output shift
  parameter integer LO         = -128,  // output clamp low (int8 code)
  parameter integer HI         = 127    // output clamp high (int8 code)
) (
  input  wire               clk_i,
  input  wire               rst_ni,
  input  wire [LANES*8-1:0] s0_axis_tdata,
  input  wire               s0_axis_tvalid,
  output wire               s0_axis_tready,
  input  wire               s0_axis_tlast,
  input  wire [LANES*8-1:0] s1_axis_tdata,
  input  wire               s1_axis_tvalid,
  output wire               s1_axis_tready,
  input  wire               s1_axis_tlast,
  output wire [LANES*8-1:0] m_axis_tdata,
  output wire               m_axis_tvalid,
  input  wire               m_axis_tready,
  output wire               m_axis_tlast
);

`include "rf_functions.vh"

  localparam integer AI = 9 + LEFT_SHIFT;                                  // (q - Z) << LS bits
  localparam integer R1 = f_rescale_bits(AI, f_ubits(M1), K_BITS, S1, ROUNDING);
  localparam integer R2 = f_rescale_bits(AI, f_ubits(M2), K_BITS, S2, ROUNDING);
  localparam integer AS = f_max(R1, R2) + 1;                               // a_1 + a_2 bits
  localparam integer RO = f_rescale_bits(AS, f_ubits(MO), K_BITS, SO, ROUNDING);

  `RF_CHECK(LANES >= 1, g_chk_lanes, "rf_add: LANES must be at least 1")
  `RF_CHECK(Z1 >= -128 && Z1 <= 127 && Z2 >= -128 && Z2 <= 127, g_chk_z, "rf_add: Z1 and Z2 must be int8 codes")
  `RF_CHECK(LEFT_SHIFT >= 0 && LEFT_SHIFT <= 40, g_chk_ls, "rf_add: LEFT_SHIFT must be in 0..40")
  `RF_CHECK(FORM == 0 || FORM == 1, g_chk_form, "rf_add: FORM must be 0 (multiplier) or 1 (CSD)")
  `RF_CHECK(AS <= 64, g_chk_width, "rf_add: the sum a_1 + a_2 needs more than 64 bits")
  // (rf_rescale checks K_BITS, ROUNDING and every (M, S); rf_saturate checks ZOUT, LO, HI.)

  localparam [8:0] Z1_9 = Z1[8:0];
  localparam [8:0] Z2_9 = Z2[8:0];

  reg  v1_q, v3_q, v5_q, v6_q;   // stages 2 and 4 are inside rf_rescale: their valid bits v2/v4
  reg  v2_q, v4_q;
  reg  l1_q, l2_q, l3_q, l4_q, l5_q, l6_q;
  wire adv  = ~v6_q | m_axis_tready;
  wire fire = s0_axis_tvalid & s1_axis_tvalid & adv;
  assign s0_axis_tready = adv & s1_axis_tvalid;
  assign s1_axis_tready = adv & s0_axis_tvalid;
  wire unused_last1 = s1_axis_tlast;

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
      v2_q <= 1'b0;
      v3_q <= 1'b0;
      v4_q <= 1'b0;
      v5_q <= 1'b0;
      v6_q <= 1'b0;
    end else if (adv) begin
      v1_q <= fire;
      v2_q <= v1_q;
      v3_q <= v2_q;
      v4_q <= v3_q;
      v5_q <= v4_q;
      v6_q <= v5_q;
    end
  end
  always @(posedge clk_i) begin
    if (adv) begin
      l1_q <= s0_axis_tlast;
      l2_q <= l1_q;
      l3_q <= l2_q;
      l4_q <= l3_q;
      l5_q <= l4_q;
      l6_q <= l5_q;
    end
  end

  reg  [LANES*9-1:0] d1_q, d2_q;   // q_i - Z_i, 9-bit signed
  reg  [LANES*8-1:0] y_q;
  wire [LANES*8-1:0] y5;
  genvar l;
  generate
    for (l = 0; l < LANES; l = l + 1) begin : g_lane
      always @(posedge clk_i) begin
        if (fire) begin
          d1_q[l*9 +: 9] <= {s0_axis_tdata[l*8 + 7], s0_axis_tdata[l*8 +: 8]} - Z1_9;
          d2_q[l*9 +: 9] <= {s1_axis_tdata[l*8 + 7], s1_axis_tdata[l*8 +: 8]} - Z2_9;
        end
      end
      wire [AI-1:0] x1, x2;
      if (LEFT_SHIFT > 0) begin : g_shift
        assign x1 = {d1_q[l*9 +: 9], {LEFT_SHIFT{1'b0}}};
        assign x2 = {d2_q[l*9 +: 9], {LEFT_SHIFT{1'b0}}};
      end else begin : g_noshift
        assign x1 = d1_q[l*9 +: 9];
        assign x2 = d2_q[l*9 +: 9];
      end

      wire [R1-1:0] a1;
      wire [R2-1:0] a2;
      rf_rescale #(.A_BITS(AI), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .FORM(FORM), .M(M1), .S(S1))
        u_rescale1 (.clk_i(clk_i), .en_i(adv), .a_i(x1), .m_i({K_BITS{1'b0}}), .s_i(6'd0),
                    .d_i({(f_ubits(K_BITS) + 2){1'b0}}), .r_o(a1));
      rf_rescale #(.A_BITS(AI), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .FORM(FORM), .M(M2), .S(S2))
        u_rescale2 (.clk_i(clk_i), .en_i(adv), .a_i(x2), .m_i({K_BITS{1'b0}}), .s_i(6'd0),
                    .d_i({(f_ubits(K_BITS) + 2){1'b0}}), .r_o(a2));

      // a_1 + a_2, exact in AS bits (each sign-extended by at least one bit).
      wire [AS-1:0] a1_ext = {{(AS - R1){a1[R1-1]}}, a1};
      wire [AS-1:0] a2_ext = {{(AS - R2){a2[R2-1]}}, a2};
      wire [AS-1:0] sum = a1_ext + a2_ext;

      wire [RO-1:0] r;
      rf_rescale #(.A_BITS(AS), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .FORM(FORM), .M(MO), .S(SO))
        u_rescale_out (.clk_i(clk_i), .en_i(adv), .a_i(sum), .m_i({K_BITS{1'b0}}), .s_i(6'd0),
                       .d_i({(f_ubits(K_BITS) + 2){1'b0}}), .r_o(r));

      rf_saturate #(.R_BITS(RO), .ZY(ZOUT), .LO(LO), .HI(HI)) u_saturate (.r_i(r), .y_o(y5[l*8 +: 8]));
    end
  endgenerate

  always @(posedge clk_i) begin
    if (adv & v5_q) begin
      y_q <= y5;
    end
  end

  assign m_axis_tvalid = v6_q;
  assign m_axis_tdata  = y_q;
  assign m_axis_tlast  = l6_q;

endmodule
