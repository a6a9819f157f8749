// tb_chain: test wrapper (not part of the library) that wires one DESIGN section 5 op the way
// a generated top does: rf_window -> engine [-> rf_requant]. Verilog-2005.
//   OP = 0 conv2d:           rf_window ORDER 0 -> rf_mac   -> rf_requant (PE lanes)
//   OP = 1 depthwise_conv2d: rf_window ORDER 1 -> rf_dwmac -> rf_requant (SIMD*DM lanes)
//   OP = 2 avg_pool2d:       rf_window ORDER 1 -> rf_avgpool (SIMD lanes)
//   OP = 3 max_pool2d:       rf_window ORDER 1 -> rf_maxpool (SIMD lanes)
// ROM images: w.hex, b.hex (engines), rq.hex (requantizer ROM forms).
`default_nettype none

module tb_chain (clk_i, rst_ni, s_axis_tdata, s_axis_tvalid, s_axis_tready, s_axis_tlast,
                 m_axis_tdata, m_axis_tvalid, m_axis_tready, m_axis_tlast);
  parameter integer OP = 0;
  parameter integer H = 5, W = 5, C = 2, KH = 3, KW = 3, SH = 1, SW = 1, DH = 1, DW = 1;
  parameter integer PT = 1, PB = 1, PL = 1, PR = 1;
  parameter integer SIMD = 1, PE = 1, O = 2, DM = 1;
  parameter integer ZX = 0, FOLD_ZX = 0, ACC_BITS = 32;
  parameter integer K_BITS = 31, ROUNDING = 0, FORM = 2, M = 0, S = 0, S_MIN = 0, S_MAX = 62, DIGITS = 1;
  parameter integer ZY = 0, LO = -128, HI = 127;

  localparam integer OL = (OP == 0) ? PE : (OP == 1) ? SIMD * DM : SIMD;  // output lanes
  localparam integer EL = (OP == 0) ? PE : SIMD * DM;                      // engine lanes
  localparam integer OC = (OP == 0) ? O : (OP == 1) ? C * DM : C;          // output channels

  input  wire              clk_i;
  input  wire              rst_ni;
  input  wire [SIMD*8-1:0] s_axis_tdata;
  input  wire              s_axis_tvalid;
  output wire              s_axis_tready;
  input  wire              s_axis_tlast;
  output wire [OL*8-1:0]   m_axis_tdata;
  output wire              m_axis_tvalid;
  input  wire              m_axis_tready;
  output wire              m_axis_tlast;

  wire [SIMD*8-1:0] win_data;
  wire [SIMD-1:0]   win_pad;
  wire              win_valid, win_ready, win_last;

  rf_window #(
    .H(H), .W(W), .C(C), .KH(KH), .KW(KW), .SH(SH), .SW(SW), .DH(DH), .DW(DW),
    .PT(PT), .PB(PB), .PL(PL), .PR(PR), .SIMD(SIMD), .ORDER((OP == 0) ? 0 : 1),
    .PAD_VALUE((OP == 3) ? 0 : ZX)
  ) u_window (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready),
    .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(win_data), .m_axis_tuser(win_pad), .m_axis_tvalid(win_valid),
    .m_axis_tready(win_ready), .m_axis_tlast(win_last)
  );

  generate
    if (OP <= 1) begin : g_acc
      wire [EL*ACC_BITS-1:0] acc_data;
      wire                   acc_valid, acc_ready, acc_last;
      wire unused_pad = ^win_pad;
      if (OP == 0) begin : g_conv
        rf_mac #(
          .K(KH * KW * C), .O(O), .SIMD(SIMD), .PE(PE), .ZX(ZX), .FOLD_ZX(FOLD_ZX),
          .ACC_BITS(ACC_BITS), .W_FILE("w.hex"), .B_FILE("b.hex")
        ) u_mac (
          .clk_i(clk_i), .rst_ni(rst_ni),
          .s_axis_tdata(win_data), .s_axis_tvalid(win_valid), .s_axis_tready(win_ready),
          .s_axis_tlast(win_last),
          .m_axis_tdata(acc_data), .m_axis_tvalid(acc_valid), .m_axis_tready(acc_ready),
          .m_axis_tlast(acc_last)
        );
      end else begin : g_dw
        rf_dwmac #(
          .C(C), .DM(DM), .KK(KH * KW), .SIMD(SIMD), .ZX(ZX), .FOLD_ZX(FOLD_ZX),
          .ACC_BITS(ACC_BITS), .W_FILE("w.hex"), .B_FILE("b.hex")
        ) u_dwmac (
          .clk_i(clk_i), .rst_ni(rst_ni),
          .s_axis_tdata(win_data), .s_axis_tvalid(win_valid), .s_axis_tready(win_ready),
          .s_axis_tlast(win_last),
          .m_axis_tdata(acc_data), .m_axis_tvalid(acc_valid), .m_axis_tready(acc_ready),
          .m_axis_tlast(acc_last)
        );
      end
      rf_requant #(
        .LANES(EL), .CH(OC), .ACC_BITS(ACC_BITS), .K_BITS(K_BITS), .ROUNDING(ROUNDING),
        .FORM(FORM), .M(M), .S(S), .S_MIN(S_MIN), .S_MAX(S_MAX), .DIGITS(DIGITS),
        .ROM_FILE("rq.hex"), .ZY(ZY), .LO(LO), .HI(HI)
      ) u_requant (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(acc_data), .s_axis_tvalid(acc_valid), .s_axis_tready(acc_ready),
        .s_axis_tlast(acc_last),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
      );
    end else if (OP == 2) begin : g_avg
      rf_avgpool #(.C(C), .KK(KH * KW), .SIMD(SIMD), .LO(LO), .HI(HI)) u_pool (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(win_data), .s_axis_tuser(win_pad), .s_axis_tvalid(win_valid),
        .s_axis_tready(win_ready), .s_axis_tlast(win_last),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
      );
    end else begin : g_max
      rf_maxpool #(.C(C), .KK(KH * KW), .SIMD(SIMD), .LO(LO), .HI(HI)) u_pool (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(win_data), .s_axis_tuser(win_pad), .s_axis_tvalid(win_valid),
        .s_axis_tready(win_ready), .s_axis_tlast(win_last),
        .m_axis_tdata(m_axis_tdata), .m_axis_tvalid(m_axis_tvalid), .m_axis_tready(m_axis_tready),
        .m_axis_tlast(m_axis_tlast)
      );
    end
  endgenerate

endmodule
