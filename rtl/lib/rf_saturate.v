// rf_saturate: y = clamp(r + ZY, LO, HI) for an exact signed r of R_BITS bits, as an int8 code
// (the last step of DESIGN section 1's requantization). Verilog-2005 (IEEE 1364-2005).
//
// Combinational, no clock. r + ZY > HI iff r > HI - ZY and r + ZY < LO iff r < LO - ZY; both
// constants lie in -255..255, so the comparisons run at max(R_BITS, 10) bits with r
// sign-extended and the constants sign-extended from 10 bits: nothing is truncated whatever
// R_BITS is (the saturation_constant_k5 fault of the old template compared r against
// 127 - Z_y = 255 written as an 8-bit literal). In range, y = r[7:0] + ZY modulo 256 is exact.
`default_nettype none
`include "rf_check.vh"

module rf_saturate #(
  parameter integer R_BITS = 16,    // width of r_i (bits, two's complement), >= 1
  parameter integer ZY     = 0,     // output zero point, -128..127
  parameter integer LO     = -128,  // clamp low (int8 code)
  parameter integer HI     = 127    // clamp high (int8 code)
) (
  input  wire [R_BITS-1:0] r_i,
  output wire [7:0]        y_o
);

  `RF_CHECK(R_BITS >= 1, g_chk_bits, "rf_saturate: R_BITS must be at least 1")
  `RF_CHECK(ZY >= -128 && ZY <= 127, g_chk_zy, "rf_saturate: ZY must be an int8 code")
  `RF_CHECK(LO >= -128 && LO <= HI && HI <= 127, g_chk_clamp, "rf_saturate: need -128 <= LO <= HI <= 127")

  localparam integer CW    = (R_BITS > 10) ? R_BITS : 10;  // compare width
  localparam integer RHI_I = HI - ZY;
  localparam integer RLO_I = LO - ZY;
  localparam [9:0] RHI10 = RHI_I[9:0];
  localparam [9:0] RLO10 = RLO_I[9:0];
  localparam [7:0] ZY8   = ZY[7:0];
  localparam [7:0] HI8   = HI[7:0];
  localparam [7:0] LO8   = LO[7:0];

  wire [CW-1:0] r_ext, rhi, rlo;
  generate
    if (CW > R_BITS) begin : g_ext_r
      assign r_ext = {{(CW - R_BITS){r_i[R_BITS-1]}}, r_i};
    end else begin : g_same_r
      assign r_ext = r_i;
    end
    if (CW > 10) begin : g_ext_c
      assign rhi = {{(CW - 10){RHI10[9]}}, RHI10};
      assign rlo = {{(CW - 10){RLO10[9]}}, RLO10};
    end else begin : g_same_c
      assign rhi = RHI10;
      assign rlo = RLO10;
    end
  endgenerate
  wire over  = $signed(r_ext) > $signed(rhi);
  wire under = $signed(r_ext) < $signed(rlo);
  assign y_o = over ? HI8 : under ? LO8 : r_ext[7:0] + ZY8;
  wire unused_r = ^r_ext[CW-1:8];

endmodule
