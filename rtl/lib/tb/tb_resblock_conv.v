// tb_resblock_conv: one conv2d op of tb_resblock (test wrapper, not part of the library):
// rf_window -> rf_mac -> rf_dwc (32-bit, PE -> RQ lanes) -> rf_requant -> rf_dwc (RQ -> OSIMD).
// Verilog-2005.
`default_nettype none

module tb_resblock_conv #(
  parameter integer H = 8, W = 8, C = 4, CO = 4, K = 3, S = 1, PT = 1, PB = 1,
  parameter integer SIMD = 2, PE = 2, RQ = 2, ZX = 0, ZY = 0, LO = -128, K_BITS = 31, ROUNDING = 1,
  parameter integer OSIMD = SIMD,     // lanes of the output stream
  parameter WF = "w.hex", BF = "b.hex", QF = "rq.hex"
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire [SIMD*8-1:0] s_axis_tdata,
  input  wire              s_axis_tvalid,
  output wire              s_axis_tready,
  input  wire              s_axis_tlast,
  output wire [OSIMD*8-1:0] m_axis_tdata,
  output wire              m_axis_tvalid,
  input  wire              m_axis_tready,
  output wire              m_axis_tlast
);
  wire [SIMD*8-1:0] w_d;  wire [SIMD-1:0] w_p;  wire w_v, w_r, w_l;
  rf_window #(.H(H), .W(W), .C(C), .KH(K), .KW(K), .SH(S), .SW(S), .PT(PT), .PB(PB), .PL(PT), .PR(PB),
              .SIMD(SIMD), .ORDER(0), .PAD_VALUE(ZX)) u_win (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(w_d), .m_axis_tuser(w_p), .m_axis_tvalid(w_v), .m_axis_tready(w_r), .m_axis_tlast(w_l));
  wire unused_pad = ^w_p;
  wire [PE*32-1:0] a_d;  wire a_v, a_r, a_l;
  rf_mac #(.K(K * K * C), .O(CO), .SIMD(SIMD), .PE(PE), .ZX(ZX), .FOLD_ZX(1), .ACC_BITS(32),
           .W_FILE(WF), .B_FILE(BF)) u_mac (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(w_d), .s_axis_tvalid(w_v), .s_axis_tready(w_r), .s_axis_tlast(w_l),
    .m_axis_tdata(a_d), .m_axis_tvalid(a_v), .m_axis_tready(a_r), .m_axis_tlast(a_l));
  wire [RQ*32-1:0] n_d;  wire n_v, n_r, n_l;
  rf_dwc #(.IN_LANES(PE), .OUT_LANES(RQ), .ELEM_BITS(32)) u_acc_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(a_d), .s_axis_tvalid(a_v), .s_axis_tready(a_r), .s_axis_tlast(a_l),
    .m_axis_tdata(n_d), .m_axis_tvalid(n_v), .m_axis_tready(n_r), .m_axis_tlast(n_l));
  wire [RQ*8-1:0] q_d;  wire q_v, q_r, q_l;
  rf_requant #(.LANES(RQ), .CH(CO), .ACC_BITS(32), .K_BITS(K_BITS), .ROUNDING(ROUNDING), .FORM(2),
               .ROM_FILE(QF), .ZY(ZY), .LO(LO), .HI(127)) u_rq (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(n_d), .s_axis_tvalid(n_v), .s_axis_tready(n_r), .s_axis_tlast(n_l),
    .m_axis_tdata(q_d), .m_axis_tvalid(q_v), .m_axis_tready(q_r), .m_axis_tlast(q_l));
  rf_dwc #(.IN_LANES(RQ), .OUT_LANES(OSIMD)) u_out_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(q_d), .s_axis_tvalid(q_v), .s_axis_tready(q_r), .s_axis_tlast(q_l),
    .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast));
endmodule
