// tb_resblock: a ResNet basic block wired from library modules the way a generated top does
// (test wrapper, not part of the library). Verilog-2005.
//
//   x --rf_fork--> main: conv 3x3 s STRIDE (SAME) + ReLU -> conv 3x3 s1 pad 1  --> rf_add --> y
//              \-> skip: rf_fifo (SKIP_DEPTH beats) [-> conv 1x1 s STRIDE when STRIDE = 2] -/
//
// Every conv is rf_window -> rf_mac -> rf_dwc (32-bit, PE -> RQ lanes) -> rf_requant ->
// rf_dwc (RQ -> SIMD lanes). The skip FIFO depth is a parameter so that the test can show the
// README's sizing formula is sufficient and a much smaller FIFO deadlocks.
// ROM images: W1F.. (default c1_*.hex, c2_*.hex, sk_*.hex: w, b, rq).
`default_nettype none

module tb_resblock (clk_i, rst_ni, s_axis_tdata, s_axis_tvalid, s_axis_tready, s_axis_tlast,
                    m_axis_tdata, m_axis_tvalid, m_axis_tready, m_axis_tlast);
  parameter integer H = 8, W = 8, C = 4, CO = 4, STRIDE = 1;
  parameter integer SIMD = 2;          // lanes of every 8-bit stream
  parameter integer PE = 2;            // MAC output channels in parallel
  parameter integer RQ = 2;            // requantizer lanes
  parameter integer SKIP_DEPTH = 64;   // skip FIFO depth (beats of SIMD codes)
  parameter integer ADD_LANES = SIMD;  // rf_add lanes (rf_dwc around it when different)
  parameter integer ZX = -5;           // input zero point (skip operand of the add when STRIDE = 1)
  parameter integer ZA = -128;         // zero point after each conv
  parameter integer K_BITS = 31, ROUNDING = 1;
  parameter integer M1 = 0, S1 = 0, M2 = 0, S2 = 0, MO = 0, SO = 0, ZOUT = 0;
  parameter W1F = "c1_w.hex", B1F = "c1_b.hex", Q1F = "c1_rq.hex";   // ROM images (strings)
  parameter W2F = "c2_w.hex", B2F = "c2_b.hex", Q2F = "c2_rq.hex";
  parameter WSF = "sk_w.hex", BSF = "sk_b.hex", QSF = "sk_rq.hex";

  localparam integer PT1 = (STRIDE == 1) ? 1 : 0;   // TF SAME: stride 2 on an even size pads
  localparam integer PB1 = 1;                       // only the bottom/right
  localparam integer OH = (H + PT1 + PB1 - 3) / STRIDE + 1;
  localparam integer OW = (W + PT1 + PB1 - 3) / STRIDE + 1;

  input  wire              clk_i;
  input  wire              rst_ni;
  input  wire [SIMD*8-1:0] s_axis_tdata;
  input  wire              s_axis_tvalid;
  output wire              s_axis_tready;
  input  wire              s_axis_tlast;
  output wire [SIMD*8-1:0] m_axis_tdata;
  output wire              m_axis_tvalid;
  input  wire              m_axis_tready;
  output wire              m_axis_tlast;

  wire [SIMD*8-1:0] f_d;  wire [1:0] f_v, f_r;  wire f_l;
  rf_fork #(.NOUT(2), .WIDTH(SIMD * 8)) u_fork (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(f_d), .m_axis_tvalid(f_v), .m_axis_tready(f_r), .m_axis_tlast(f_l));

  // Main branch.
  wire [SIMD*8-1:0] a1_d;  wire a1_v, a1_r, a1_l;
  tb_resblock_conv #(.H(H), .W(W), .C(C), .CO(CO), .K(3), .S(STRIDE), .PT(PT1), .PB(PB1), .SIMD(SIMD), .PE(PE), .RQ(RQ),
                     .ZX(ZX), .ZY(ZA), .LO(ZA), .K_BITS(K_BITS), .ROUNDING(ROUNDING),
                     .WF(W1F), .BF(B1F), .QF(Q1F)) u_c1 (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(f_d), .s_axis_tvalid(f_v[0]), .s_axis_tready(f_r[0]), .s_axis_tlast(f_l),
    .m_axis_tdata(a1_d), .m_axis_tvalid(a1_v), .m_axis_tready(a1_r), .m_axis_tlast(a1_l));
  wire [SIMD*8-1:0] a2_d;  wire a2_v, a2_r, a2_l;
  tb_resblock_conv #(.H(OH), .W(OW), .C(CO), .CO(CO), .K(3), .S(1), .PT(1), .PB(1), .SIMD(SIMD), .PE(PE), .RQ(RQ),
                     .ZX(ZA), .ZY(ZA), .LO(-128), .K_BITS(K_BITS), .ROUNDING(ROUNDING),
                     .WF(W2F), .BF(B2F), .QF(Q2F)) u_c2 (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(a1_d), .s_axis_tvalid(a1_v), .s_axis_tready(a1_r), .s_axis_tlast(a1_l),
    .m_axis_tdata(a2_d), .m_axis_tvalid(a2_v), .m_axis_tready(a2_r), .m_axis_tlast(a2_l));

  // Skip branch.
  wire [SIMD*8-1:0] q_d;  wire q_v, q_r, q_l;
  rf_fifo #(.WIDTH(SIMD * 8), .DEPTH(SKIP_DEPTH)) u_skip_fifo (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(f_d), .s_axis_tvalid(f_v[1]), .s_axis_tready(f_r[1]), .s_axis_tlast(f_l),
    .m_axis_tdata(q_d), .m_axis_tvalid(q_v), .m_axis_tready(q_r), .m_axis_tlast(q_l));
  wire [SIMD*8-1:0] b_d;  wire b_v, b_r, b_l;
  generate
    if (STRIDE == 1) begin : g_identity
      assign b_d = q_d;
      assign b_v = q_v;
      assign q_r = b_r;
      assign b_l = q_l;
    end else begin : g_proj
      tb_resblock_conv #(.H(H), .W(W), .C(C), .CO(CO), .K(1), .S(STRIDE), .PT(0), .PB(0), .SIMD(SIMD), .PE(PE), .RQ(RQ),
                         .ZX(ZX), .ZY(ZA), .LO(-128), .K_BITS(K_BITS), .ROUNDING(ROUNDING),
                         .WF(WSF), .BF(BSF), .QF(QSF)) u_sk (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(q_d), .s_axis_tvalid(q_v), .s_axis_tready(q_r), .s_axis_tlast(q_l),
        .m_axis_tdata(b_d), .m_axis_tvalid(b_v), .m_axis_tready(b_r), .m_axis_tlast(b_l));
    end
  endgenerate

  // The add runs at ADD_LANES elements per cycle: enough for one element per cycle while its
  // 3*ADD_LANES rescalers cost far less than SIMD lanes would.
  wire [ADD_LANES*8-1:0] a3_d, b3_d, y3_d;  wire a3_v, a3_r, a3_l, b3_v, b3_r, b3_l, y3_v, y3_r, y3_l;
  rf_dwc #(.IN_LANES(SIMD), .OUT_LANES(ADD_LANES)) u_add_dwc_a (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(a2_d), .s_axis_tvalid(a2_v), .s_axis_tready(a2_r), .s_axis_tlast(a2_l),
    .m_axis_tdata(a3_d), .m_axis_tvalid(a3_v), .m_axis_tready(a3_r), .m_axis_tlast(a3_l));
  rf_dwc #(.IN_LANES(SIMD), .OUT_LANES(ADD_LANES)) u_add_dwc_b (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(b_d), .s_axis_tvalid(b_v), .s_axis_tready(b_r), .s_axis_tlast(b_l),
    .m_axis_tdata(b3_d), .m_axis_tvalid(b3_v), .m_axis_tready(b3_r), .m_axis_tlast(b3_l));
  rf_add #(.LANES(ADD_LANES), .Z1(ZA), .Z2((STRIDE == 1) ? ZX : ZA), .ZOUT(ZOUT), .LEFT_SHIFT(20), .K_BITS(K_BITS),
           .ROUNDING(ROUNDING), .FORM(0), .M1(M1), .S1(S1), .M2(M2), .S2(S2), .MO(MO), .SO(SO),
           .LO(ZOUT), .HI(127)) u_add (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s0_axis_tdata(a3_d), .s0_axis_tvalid(a3_v), .s0_axis_tready(a3_r), .s0_axis_tlast(a3_l),
    .s1_axis_tdata(b3_d), .s1_axis_tvalid(b3_v), .s1_axis_tready(b3_r), .s1_axis_tlast(b3_l),
    .m_axis_tdata(y3_d), .m_axis_tvalid(y3_v), .m_axis_tready(y3_r), .m_axis_tlast(y3_l));
  rf_dwc #(.IN_LANES(ADD_LANES), .OUT_LANES(SIMD)) u_add_dwc_y (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(y3_d), .s_axis_tvalid(y3_v), .s_axis_tready(y3_r), .s_axis_tlast(y3_l),
    .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast));

endmodule
