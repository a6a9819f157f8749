// tb_resnet8: a hand-wired ResNet-8 (MLPerf Tiny image classification shape) from library
// modules, parameters and ROM images only (test wrapper, not part of the library). Verilog-2005.
//
//   32x32x3 -> conv 3x3 16 + ReLU                                     (tb_resblock_conv)
//   block 1: 2 x conv 3x3 16, identity skip, add + ReLU    32x32x16   (tb_resblock)
//   block 2: conv 3x3 s2 32, conv 3x3 32, 1x1 s2 projection, add      16x16x32
//   block 3: conv 3x3 s2 64, conv 3x3 64, 1x1 s2 projection, add       8x8x64
//   avg pool 8x8 -> dense 10 -> argmax (logits then class, 2 lanes per beat)
// Default folding: every 3x3 conv of the blocks takes 18432 cycles per image (SIMD 16 x PE 8);
// conv1 9216 (SIMD 3 x PE 16). ROM images: c1_*, b<i>c1_*, b<i>c2_*, b<i>sk_*, fc_* (.hex).
`default_nettype none

module tb_resnet8 #(
  parameter integer K_BITS = 31, ROUNDING = 1,   // every conv / add rescaler (TFLite ref: double)
  parameter integer ZX_IN = -3,                  // input zero point
  parameter integer SIMD = 16, PE = 8, RQ = 2,   // block folding
  parameter integer SKIP1 = 80, SKIP2 = 32, SKIP3 = 32,  // skip FIFO depths (README formula: 66, 4, 4)
  parameter integer POOL_SIMD = 4,
  parameter integer ADD_LANES = 2,
  parameter integer M1 = 0, S1 = 0, M2 = 0, S2 = 0, MO = 0, SO = 0   // add rescalers (all blocks)
) (
  input  wire        clk_i,
  input  wire        rst_ni,
  input  wire [23:0] s_axis_tdata,
  input  wire        s_axis_tvalid,
  output wire        s_axis_tready,
  input  wire        s_axis_tlast,
  output wire [15:0] m_axis_tdata,
  output wire        m_axis_tuser,
  output wire        m_axis_tvalid,
  input  wire        m_axis_tready,
  output wire        m_axis_tlast
);
  localparam integer ZA = -128;

  wire [SIMD*8-1:0] x0_d;  wire x0_v, x0_r, x0_l;
  tb_resblock_conv #(.H(32), .W(32), .C(3), .CO(16), .K(3), .S(1), .PT(1), .PB(1), .SIMD(3), .PE(16), .RQ(RQ),
                     .ZX(ZX_IN), .ZY(ZA), .LO(ZA), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .OSIMD(SIMD),
                     .WF("c1_w.hex"), .BF("c1_b.hex"), .QF("c1_rq.hex")) u_c1 (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(x0_d), .m_axis_tvalid(x0_v), .m_axis_tready(x0_r), .m_axis_tlast(x0_l));

  wire [SIMD*8-1:0] x1_d;  wire x1_v, x1_r, x1_l;
  tb_resblock #(.H(32), .W(32), .C(16), .CO(16), .STRIDE(1), .SIMD(SIMD), .PE(PE), .RQ(RQ), .SKIP_DEPTH(SKIP1), .ADD_LANES(ADD_LANES),
                .ZX(ZA), .ZA(ZA), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .M1(M1), .S1(S1), .M2(M2), .S2(S2),
                .MO(MO), .SO(SO), .ZOUT(ZA),
                .W1F("b1c1_w.hex"), .B1F("b1c1_b.hex"), .Q1F("b1c1_rq.hex"),
                .W2F("b1c2_w.hex"), .B2F("b1c2_b.hex"), .Q2F("b1c2_rq.hex")) u_b1 (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(x0_d), .s_axis_tvalid(x0_v), .s_axis_tready(x0_r), .s_axis_tlast(x0_l),
    .m_axis_tdata(x1_d), .m_axis_tvalid(x1_v), .m_axis_tready(x1_r), .m_axis_tlast(x1_l));

  wire [SIMD*8-1:0] x2_d;  wire x2_v, x2_r, x2_l;
  tb_resblock #(.H(32), .W(32), .C(16), .CO(32), .STRIDE(2), .SIMD(SIMD), .PE(PE), .RQ(RQ), .SKIP_DEPTH(SKIP2), .ADD_LANES(ADD_LANES),
                .ZX(ZA), .ZA(ZA), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .M1(M1), .S1(S1), .M2(M2), .S2(S2),
                .MO(MO), .SO(SO), .ZOUT(ZA),
                .W1F("b2c1_w.hex"), .B1F("b2c1_b.hex"), .Q1F("b2c1_rq.hex"),
                .W2F("b2c2_w.hex"), .B2F("b2c2_b.hex"), .Q2F("b2c2_rq.hex"),
                .WSF("b2sk_w.hex"), .BSF("b2sk_b.hex"), .QSF("b2sk_rq.hex")) u_b2 (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(x1_d), .s_axis_tvalid(x1_v), .s_axis_tready(x1_r), .s_axis_tlast(x1_l),
    .m_axis_tdata(x2_d), .m_axis_tvalid(x2_v), .m_axis_tready(x2_r), .m_axis_tlast(x2_l));

  wire [SIMD*8-1:0] x3_d;  wire x3_v, x3_r, x3_l;
  tb_resblock #(.H(16), .W(16), .C(32), .CO(64), .STRIDE(2), .SIMD(SIMD), .PE(PE), .RQ(RQ), .SKIP_DEPTH(SKIP3), .ADD_LANES(ADD_LANES),
                .ZX(ZA), .ZA(ZA), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .M1(M1), .S1(S1), .M2(M2), .S2(S2),
                .MO(MO), .SO(SO), .ZOUT(ZA),
                .W1F("b3c1_w.hex"), .B1F("b3c1_b.hex"), .Q1F("b3c1_rq.hex"),
                .W2F("b3c2_w.hex"), .B2F("b3c2_b.hex"), .Q2F("b3c2_rq.hex"),
                .WSF("b3sk_w.hex"), .BSF("b3sk_b.hex"), .QSF("b3sk_rq.hex")) u_b3 (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(x2_d), .s_axis_tvalid(x2_v), .s_axis_tready(x2_r), .s_axis_tlast(x2_l),
    .m_axis_tdata(x3_d), .m_axis_tvalid(x3_v), .m_axis_tready(x3_r), .m_axis_tlast(x3_l));

  // Average pool 8x8 -> 1x1x64, dense 10, argmax.
  wire [POOL_SIMD*8-1:0] pi_d;  wire pi_v, pi_r, pi_l;
  rf_dwc #(.IN_LANES(SIMD), .OUT_LANES(POOL_SIMD)) u_pool_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(x3_d), .s_axis_tvalid(x3_v), .s_axis_tready(x3_r), .s_axis_tlast(x3_l),
    .m_axis_tdata(pi_d), .m_axis_tvalid(pi_v), .m_axis_tready(pi_r), .m_axis_tlast(pi_l));
  wire [POOL_SIMD*8-1:0] pw_d;  wire [POOL_SIMD-1:0] pw_p;  wire pw_v, pw_r, pw_l;
  rf_window #(.H(8), .W(8), .C(64), .KH(8), .KW(8), .SIMD(POOL_SIMD), .ORDER(1), .PAD_VALUE(ZA),
              .BUF_EXTRA(8 * 8 * 64 / POOL_SIMD)) u_pool_win (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(pi_d), .s_axis_tvalid(pi_v), .s_axis_tready(pi_r), .s_axis_tlast(pi_l),
    .m_axis_tdata(pw_d), .m_axis_tuser(pw_p), .m_axis_tvalid(pw_v), .m_axis_tready(pw_r), .m_axis_tlast(pw_l));
  wire [POOL_SIMD*8-1:0] po_d;  wire po_v, po_r, po_l;
  rf_avgpool #(.C(64), .KK(64), .SIMD(POOL_SIMD)) u_pool (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(pw_d), .s_axis_tuser(pw_p), .s_axis_tvalid(pw_v), .s_axis_tready(pw_r), .s_axis_tlast(pw_l),
    .m_axis_tdata(po_d), .m_axis_tvalid(po_v), .m_axis_tready(po_r), .m_axis_tlast(po_l));
  wire [7:0] fi_d;  wire fi_v, fi_r, fi_l;
  rf_dwc #(.IN_LANES(POOL_SIMD), .OUT_LANES(1)) u_fc_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(po_d), .s_axis_tvalid(po_v), .s_axis_tready(po_r), .s_axis_tlast(po_l),
    .m_axis_tdata(fi_d), .m_axis_tvalid(fi_v), .m_axis_tready(fi_r), .m_axis_tlast(fi_l));
  wire [10*32-1:0] fa_d;  wire fa_v, fa_r, fa_l;
  rf_mac #(.K(64), .O(10), .SIMD(1), .PE(10), .ZX(ZA), .FOLD_ZX(1), .ACC_BITS(32),
           .W_FILE("fc_w.hex"), .B_FILE("fc_b.hex")) u_fc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fi_d), .s_axis_tvalid(fi_v), .s_axis_tready(fi_r), .s_axis_tlast(fi_l),
    .m_axis_tdata(fa_d), .m_axis_tvalid(fa_v), .m_axis_tready(fa_r), .m_axis_tlast(fa_l));
  wire [2*32-1:0] fn_d;  wire fn_v, fn_r, fn_l;
  rf_dwc #(.IN_LANES(10), .OUT_LANES(2), .ELEM_BITS(32)) u_fc_acc_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fa_d), .s_axis_tvalid(fa_v), .s_axis_tready(fa_r), .s_axis_tlast(fa_l),
    .m_axis_tdata(fn_d), .m_axis_tvalid(fn_v), .m_axis_tready(fn_r), .m_axis_tlast(fn_l));
  wire [15:0] fq_d;  wire fq_v, fq_r, fq_l;
  rf_requant #(.LANES(2), .CH(10), .ACC_BITS(32), .K_BITS(K_BITS), .ROUNDING(0), .FORM(2),
               .ROM_FILE("fc_rq.hex"), .ZY(3), .LO(-128), .HI(127)) u_fc_rq (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fn_d), .s_axis_tvalid(fn_v), .s_axis_tready(fn_r), .s_axis_tlast(fn_l),
    .m_axis_tdata(fq_d), .m_axis_tvalid(fq_v), .m_axis_tready(fq_r), .m_axis_tlast(fq_l));
  rf_argmax #(.LANES(2), .N(10), .APPEND(1)) u_argmax (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fq_d), .s_axis_tvalid(fq_v), .s_axis_tready(fq_r), .s_axis_tlast(fq_l),
    .m_axis_tdata(m_axis_tdata), .m_axis_tuser(m_axis_tuser), .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast));
endmodule
