// rf_maxpool: max pool (MAX_POOL_2D, DESIGN section 5). Verilog-2005 (IEEE 1364-2005).
//
// For every output pixel and channel: y = clamp(max of the raw int8 codes of the valid
// (non-padding) taps, LO, HI). Input and output share (S, Z). A window with no valid tap
// gives clamp(-128, LO, HI) (TFLite leaves that case undefined; a generator should refuse it).
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
// Cycles: KK per (pixel, cf); latency 2 cycles from a group's last tap to its output beat.
`default_nettype none
`include "rf_check.vh"

module rf_maxpool #(
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

  localparam integer TB = f_idx_bits(KK);

  `RF_CHECK(C >= 1 && KK >= 1, g_chk_dims, "rf_maxpool: C and KK must be positive")
  `RF_CHECK(SIMD >= 1 && C % SIMD == 0, g_chk_simd, "rf_maxpool: SIMD must divide C")
  `RF_CHECK(LO >= -128 && LO <= HI && HI <= 127, g_chk_clamp, "rf_maxpool: need -128 <= LO <= HI <= 127")

  localparam integer KK1 = KK - 1;
  localparam [TB-1:0] T_LAST = KK1[TB-1:0];
  localparam [7:0] LO8 = LO[7:0];
  localparam [7:0] HI8 = HI[7:0];

  reg  [TB-1:0]      t_q;
  reg  [SIMD*8-1:0]  max_q;
  reg  [SIMD*8-1:0]  y2_q;
  reg                v1_q, tl1_q, v2_q, tl2_q;
  wire adv    = ~v2_q | m_axis_tready;
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

  wire [SIMD*8-1:0] y_d;
  genvar j;
  generate
    for (j = 0; j < SIMD; j = j + 1) begin : g_lane
      wire [7:0] x   = s_axis_tdata[j*8 +: 8];
      wire [7:0] cur = first ? 8'h80 : max_q[j*8 +: 8];          // -128 before any valid tap
      wire       gt  = valid_tap & ($signed(x) > $signed(cur));
      always @(posedge clk_i) begin
        if (issue) begin
          max_q[j*8 +: 8] <= gt ? x : cur;
        end
      end
      wire [7:0] m = max_q[j*8 +: 8];
      assign y_d[j*8 +: 8] = ($signed(m) > $signed(HI8)) ? HI8 : ($signed(m) < $signed(LO8)) ? LO8 : m;
    end
  endgenerate

  always @(posedge clk_i) begin
    if (issue) begin
      tl1_q <= s_axis_tlast;
    end
    if (adv & v1_q) begin
      y2_q <= y_d;
    end
    if (adv) begin
      tl2_q <= tl1_q;
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
      v2_q <= 1'b0;
    end else if (adv) begin
      v1_q <= issue & last_t;
      v2_q <= v1_q;
    end
  end

  assign m_axis_tvalid = v2_q;
  assign m_axis_tdata  = y2_q;
  assign m_axis_tlast  = tl2_q;

endmodule
