// tb_dscnn: a hand-wired DS-CNN (MLPerf Tiny KWS reference shape) built only from library
// modules, parameters and ROM images, the way the generator is meant to write a top. Used to
// measure Verilator simulation speed and to check the modules compose. Not part of the library.
// Verilog-2005.
//
//   input 49x10x1 -> conv 10x4 s2 (pad 4,5,1,1) 64 ch, ReLU      (rf_window, rf_mac, rf_requant)
//   4 x [ dw 3x3 s1 pad 1, ReLU -> pw 1x1 64 ch, ReLU ]           (rf_window, rf_dwmac, rf_requant,
//                                                                   rf_mac, rf_requant)
//   avg pool 25x5 -> 1x1x64 -> dense 12 -> argmax                 (rf_window, rf_avgpool, rf_mac,
//                                                                   rf_requant, rf_argmax)
//   rf_dwc between units whose lanes differ; in particular each MAC engine's PE accumulators
//   pass an rf_dwc (32-bit elements) to a requantizer with only as many lanes as its output
//   rate needs (a few): rescalers are the costly part of an integer datapath, in gates and in
//   simulation time alike.
// Output stream: the 12 logits (FC_RQ per beat) then the class beat (rf_argmax APPEND = 1).
// ROM images (written by tb_dscnn.cpp): c1_*.hex, dw<i>_*.hex, pw<i>_*.hex, fc_*.hex with
// * = w (weights), b (biases), rq (per-channel m, s; rf_requant FORM 2).
`default_nettype none

module tb_dscnn #(
  parameter integer K_BITS   = 31,   // multiplicand bits of every requantizer
  parameter integer RND_CONV = 1,    // rounding of conv / depthwise requantizers (TFLite ref: double)
  parameter integer RND_FC   = 0,    // rounding of the dense requantizer (TFLite ref: single)
  parameter integer ZX_IN    = 83,   // input zero point
  parameter integer C1_PE    = 64,   // conv1 output channels in parallel
  parameter integer DW_SIMD  = 16,   // depthwise channels per cycle
  parameter integer PW_SIMD  = 16,   // pointwise input channels per cycle
  parameter integer PW_PE    = 8,    // pointwise output channels in parallel
  parameter integer POOL_SIMD = 16,  // average pool channels per cycle
  parameter integer FC_SIMD  = 16,   // dense inputs per cycle
  parameter integer C1_RQ    = 2,    // requantizer lanes after conv1 (the MAC's PE accumulators
  parameter integer DW_RQ    = 2,    //   pass an rf_dwc of 32-bit elements first: a requantizer
  parameter integer PW_RQ    = 2,    //   lane only has to keep up with the output rate)
  parameter integer FC_RQ    = 2,    // requantizer lanes of the dense layer = argmax lanes
  parameter integer DW_EXTRA = -1    // BUF_EXTRA of the depthwise windows (-1: the default)
) (
  input  wire         clk_i,
  input  wire         rst_ni,
  input  wire [7:0]   s_axis_tdata,
  input  wire         s_axis_tvalid,
  output wire         s_axis_tready,
  input  wire         s_axis_tlast,
  output wire [FC_RQ*8-1:0] m_axis_tdata,
  output wire         m_axis_tuser,
  output wire         m_axis_tvalid,
  input  wire         m_axis_tready,
  output wire         m_axis_tlast
);

  localparam integer ZA = -128;  // zero point of every activation after a ReLU (lo = ZA)

  // ------------------------------------------------------------------------------------------
  // conv1: 49x10x1 -> 25x5x64
  // ------------------------------------------------------------------------------------------
  wire [7:0] w1_d;  wire w1_p, w1_v, w1_r, w1_l;
  rf_window #(.H(49), .W(10), .C(1), .KH(10), .KW(4), .SH(2), .SW(2), .PT(4), .PB(5), .PL(1), .PR(1),
              .SIMD(1), .ORDER(0), .PAD_VALUE(ZX_IN)) u_c1_win (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(s_axis_tdata), .s_axis_tvalid(s_axis_tvalid), .s_axis_tready(s_axis_tready), .s_axis_tlast(s_axis_tlast),
    .m_axis_tdata(w1_d), .m_axis_tuser(w1_p), .m_axis_tvalid(w1_v), .m_axis_tready(w1_r), .m_axis_tlast(w1_l));
  wire unused_w1_p = w1_p;
  wire [C1_PE*32-1:0] a1_d;  wire a1_v, a1_r, a1_l;
  rf_mac #(.K(40), .O(64), .SIMD(1), .PE(C1_PE), .ZX(ZX_IN), .FOLD_ZX(1), .ACC_BITS(32),
           .W_FILE("c1_w.hex"), .B_FILE("c1_b.hex")) u_c1_mac (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(w1_d), .s_axis_tvalid(w1_v), .s_axis_tready(w1_r), .s_axis_tlast(w1_l),
    .m_axis_tdata(a1_d), .m_axis_tvalid(a1_v), .m_axis_tready(a1_r), .m_axis_tlast(a1_l));
  wire [C1_RQ*32-1:0] n1_d;  wire n1_v, n1_r, n1_l;
  rf_dwc #(.IN_LANES(C1_PE), .OUT_LANES(C1_RQ), .ELEM_BITS(32)) u_c1_acc_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(a1_d), .s_axis_tvalid(a1_v), .s_axis_tready(a1_r), .s_axis_tlast(a1_l),
    .m_axis_tdata(n1_d), .m_axis_tvalid(n1_v), .m_axis_tready(n1_r), .m_axis_tlast(n1_l));
  wire [C1_RQ*8-1:0] q1_d;  wire q1_v, q1_r, q1_l;
  rf_requant #(.LANES(C1_RQ), .CH(64), .ACC_BITS(32), .K_BITS(K_BITS), .ROUNDING(RND_CONV), .FORM(2),
               .ROM_FILE("c1_rq.hex"), .ZY(ZA), .LO(ZA), .HI(127)) u_c1_rq (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(n1_d), .s_axis_tvalid(n1_v), .s_axis_tready(n1_r), .s_axis_tlast(n1_l),
    .m_axis_tdata(q1_d), .m_axis_tvalid(q1_v), .m_axis_tready(q1_r), .m_axis_tlast(q1_l));

  // Block inputs (DW_SIMD lanes): index 0 from conv1, index i+1 from block i.
  wire [DW_SIMD*8-1:0] blk_d [0:4];
  wire [4:0] blk_v, blk_r, blk_l;
  rf_dwc #(.IN_LANES(C1_RQ), .OUT_LANES(DW_SIMD)) u_c1_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(q1_d), .s_axis_tvalid(q1_v), .s_axis_tready(q1_r), .s_axis_tlast(q1_l),
    .m_axis_tdata(blk_d[0]), .m_axis_tvalid(blk_v[0]), .m_axis_tready(blk_r[0]), .m_axis_tlast(blk_l[0]));

  // ------------------------------------------------------------------------------------------
  // 4 depthwise-separable blocks, 25x5x64 each.
  // ------------------------------------------------------------------------------------------
  genvar i;
  generate
    for (i = 0; i < 4; i = i + 1) begin : g_blk
      localparam [8*9-1:0] DWW = (i == 0) ? "dw0_w.hex" : (i == 1) ? "dw1_w.hex" : (i == 2) ? "dw2_w.hex" : "dw3_w.hex";
      localparam [8*9-1:0] DWB = (i == 0) ? "dw0_b.hex" : (i == 1) ? "dw1_b.hex" : (i == 2) ? "dw2_b.hex" : "dw3_b.hex";
      localparam [8*10-1:0] DWQ = (i == 0) ? "dw0_rq.hex" : (i == 1) ? "dw1_rq.hex" : (i == 2) ? "dw2_rq.hex" : "dw3_rq.hex";
      localparam [8*9-1:0] PWW = (i == 0) ? "pw0_w.hex" : (i == 1) ? "pw1_w.hex" : (i == 2) ? "pw2_w.hex" : "pw3_w.hex";
      localparam [8*9-1:0] PWB = (i == 0) ? "pw0_b.hex" : (i == 1) ? "pw1_b.hex" : (i == 2) ? "pw2_b.hex" : "pw3_b.hex";
      localparam [8*10-1:0] PWQ = (i == 0) ? "pw0_rq.hex" : (i == 1) ? "pw1_rq.hex" : (i == 2) ? "pw2_rq.hex" : "pw3_rq.hex";

      wire [DW_SIMD*8-1:0] wd;  wire [DW_SIMD-1:0] wp;  wire wv, wr, wl;
      rf_window #(.H(25), .W(5), .C(64), .KH(3), .KW(3), .PT(1), .PB(1), .PL(1), .PR(1),
                  .SIMD(DW_SIMD), .ORDER(1), .PAD_VALUE(ZA), .BUF_EXTRA(DW_EXTRA)) u_win (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(blk_d[i]), .s_axis_tvalid(blk_v[i]), .s_axis_tready(blk_r[i]), .s_axis_tlast(blk_l[i]),
        .m_axis_tdata(wd), .m_axis_tuser(wp), .m_axis_tvalid(wv), .m_axis_tready(wr), .m_axis_tlast(wl));
      wire unused_wp = ^wp;
      wire [DW_SIMD*32-1:0] ad;  wire av, ar, al;
      rf_dwmac #(.C(64), .DM(1), .KK(9), .SIMD(DW_SIMD), .ZX(ZA), .FOLD_ZX(1), .ACC_BITS(32),
                 .W_FILE(DWW), .B_FILE(DWB)) u_dw (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(wd), .s_axis_tvalid(wv), .s_axis_tready(wr), .s_axis_tlast(wl),
        .m_axis_tdata(ad), .m_axis_tvalid(av), .m_axis_tready(ar), .m_axis_tlast(al));
      wire [DW_RQ*32-1:0] nd;  wire nv, nr, nl;
      rf_dwc #(.IN_LANES(DW_SIMD), .OUT_LANES(DW_RQ), .ELEM_BITS(32)) u_dw_acc_dwc (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(ad), .s_axis_tvalid(av), .s_axis_tready(ar), .s_axis_tlast(al),
        .m_axis_tdata(nd), .m_axis_tvalid(nv), .m_axis_tready(nr), .m_axis_tlast(nl));
      wire [DW_RQ*8-1:0] qd;  wire qv, qr, ql;
      rf_requant #(.LANES(DW_RQ), .CH(64), .ACC_BITS(32), .K_BITS(K_BITS), .ROUNDING(RND_CONV), .FORM(2),
                   .ROM_FILE(DWQ), .ZY(ZA), .LO(ZA), .HI(127)) u_dw_rq (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(nd), .s_axis_tvalid(nv), .s_axis_tready(nr), .s_axis_tlast(nl),
        .m_axis_tdata(qd), .m_axis_tvalid(qv), .m_axis_tready(qr), .m_axis_tlast(ql));
      wire [PW_SIMD*8-1:0] xd;  wire xv, xr, xl;
      rf_dwc #(.IN_LANES(DW_RQ), .OUT_LANES(PW_SIMD)) u_dwc_pw (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(qd), .s_axis_tvalid(qv), .s_axis_tready(qr), .s_axis_tlast(ql),
        .m_axis_tdata(xd), .m_axis_tvalid(xv), .m_axis_tready(xr), .m_axis_tlast(xl));
      // A FIFO of two input vectors decouples the pointwise MAC, which takes a vector in SF
      // cycles and then replays it for NF-1 folds, from the steady depthwise producer.
      wire [PW_SIMD*8-1:0] fd;  wire fv, fr, fl;
      rf_fifo #(.WIDTH(PW_SIMD * 8), .DEPTH(2 * 64 / PW_SIMD)) u_pw_fifo (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(xd), .s_axis_tvalid(xv), .s_axis_tready(xr), .s_axis_tlast(xl),
        .m_axis_tdata(fd), .m_axis_tvalid(fv), .m_axis_tready(fr), .m_axis_tlast(fl));
      // Pointwise 1x1 conv: the MAC engine reads the pixel stream directly (no window).
      wire [PW_PE*32-1:0] pd;  wire pv, pr, pl;
      rf_mac #(.K(64), .O(64), .SIMD(PW_SIMD), .PE(PW_PE), .ZX(ZA), .FOLD_ZX(1), .ACC_BITS(32),
               .W_FILE(PWW), .B_FILE(PWB)) u_pw (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(fd), .s_axis_tvalid(fv), .s_axis_tready(fr), .s_axis_tlast(fl),
        .m_axis_tdata(pd), .m_axis_tvalid(pv), .m_axis_tready(pr), .m_axis_tlast(pl));
      wire [PW_RQ*32-1:0] md;  wire mv, mr, ml;
      rf_dwc #(.IN_LANES(PW_PE), .OUT_LANES(PW_RQ), .ELEM_BITS(32)) u_pw_acc_dwc (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(pd), .s_axis_tvalid(pv), .s_axis_tready(pr), .s_axis_tlast(pl),
        .m_axis_tdata(md), .m_axis_tvalid(mv), .m_axis_tready(mr), .m_axis_tlast(ml));
      wire [PW_RQ*8-1:0] yd;  wire yv, yr, yl;
      rf_requant #(.LANES(PW_RQ), .CH(64), .ACC_BITS(32), .K_BITS(K_BITS), .ROUNDING(RND_CONV), .FORM(2),
                   .ROM_FILE(PWQ), .ZY(ZA), .LO(ZA), .HI(127)) u_pw_rq (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(md), .s_axis_tvalid(mv), .s_axis_tready(mr), .s_axis_tlast(ml),
        .m_axis_tdata(yd), .m_axis_tvalid(yv), .m_axis_tready(yr), .m_axis_tlast(yl));
      rf_dwc #(.IN_LANES(PW_RQ), .OUT_LANES(DW_SIMD)) u_dwc_out (
        .clk_i(clk_i), .rst_ni(rst_ni),
        .s_axis_tdata(yd), .s_axis_tvalid(yv), .s_axis_tready(yr), .s_axis_tlast(yl),
        .m_axis_tdata(blk_d[i+1]), .m_axis_tvalid(blk_v[i+1]), .m_axis_tready(blk_r[i+1]), .m_axis_tlast(blk_l[i+1]));
    end
  endgenerate

  // ------------------------------------------------------------------------------------------
  // Average pool 25x5 -> 1x1x64, dense 12, argmax.
  // ------------------------------------------------------------------------------------------
  wire [POOL_SIMD*8-1:0] pi_d;  wire pi_v, pi_r, pi_l;
  rf_dwc #(.IN_LANES(DW_SIMD), .OUT_LANES(POOL_SIMD)) u_pool_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(blk_d[4]), .s_axis_tvalid(blk_v[4]), .s_axis_tready(blk_r[4]), .s_axis_tlast(blk_l[4]),
    .m_axis_tdata(pi_d), .m_axis_tvalid(pi_v), .m_axis_tready(pi_r), .m_axis_tlast(pi_l));
  wire [POOL_SIMD*8-1:0] pw_d;  wire [POOL_SIMD-1:0] pw_p;  wire pw_v, pw_r, pw_l;
  rf_window #(.H(25), .W(5), .C(64), .KH(25), .KW(5), .SIMD(POOL_SIMD), .ORDER(1), .PAD_VALUE(ZA),
              .BUF_EXTRA(25 * 5 * 64 / POOL_SIMD)) u_pool_win (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(pi_d), .s_axis_tvalid(pi_v), .s_axis_tready(pi_r), .s_axis_tlast(pi_l),
    .m_axis_tdata(pw_d), .m_axis_tuser(pw_p), .m_axis_tvalid(pw_v), .m_axis_tready(pw_r), .m_axis_tlast(pw_l));
  wire [POOL_SIMD*8-1:0] po_d;  wire po_v, po_r, po_l;
  rf_avgpool #(.C(64), .KK(125), .SIMD(POOL_SIMD)) u_pool (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(pw_d), .s_axis_tuser(pw_p), .s_axis_tvalid(pw_v), .s_axis_tready(pw_r), .s_axis_tlast(pw_l),
    .m_axis_tdata(po_d), .m_axis_tvalid(po_v), .m_axis_tready(po_r), .m_axis_tlast(po_l));
  wire [FC_SIMD*8-1:0] fi_d;  wire fi_v, fi_r, fi_l;
  rf_dwc #(.IN_LANES(POOL_SIMD), .OUT_LANES(FC_SIMD)) u_fc_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(po_d), .s_axis_tvalid(po_v), .s_axis_tready(po_r), .s_axis_tlast(po_l),
    .m_axis_tdata(fi_d), .m_axis_tvalid(fi_v), .m_axis_tready(fi_r), .m_axis_tlast(fi_l));
  wire [12*32-1:0] fa_d;  wire fa_v, fa_r, fa_l;
  rf_mac #(.K(64), .O(12), .SIMD(FC_SIMD), .PE(12), .ZX(ZA), .FOLD_ZX(1), .ACC_BITS(32),
           .W_FILE("fc_w.hex"), .B_FILE("fc_b.hex")) u_fc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fi_d), .s_axis_tvalid(fi_v), .s_axis_tready(fi_r), .s_axis_tlast(fi_l),
    .m_axis_tdata(fa_d), .m_axis_tvalid(fa_v), .m_axis_tready(fa_r), .m_axis_tlast(fa_l));
  wire [FC_RQ*32-1:0] fn_d;  wire fn_v, fn_r, fn_l;
  rf_dwc #(.IN_LANES(12), .OUT_LANES(FC_RQ), .ELEM_BITS(32)) u_fc_acc_dwc (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fa_d), .s_axis_tvalid(fa_v), .s_axis_tready(fa_r), .s_axis_tlast(fa_l),
    .m_axis_tdata(fn_d), .m_axis_tvalid(fn_v), .m_axis_tready(fn_r), .m_axis_tlast(fn_l));
  wire [FC_RQ*8-1:0] fq_d;  wire fq_v, fq_r, fq_l;
  rf_requant #(.LANES(FC_RQ), .CH(12), .ACC_BITS(32), .K_BITS(K_BITS), .ROUNDING(RND_FC), .FORM(2),
               .ROM_FILE("fc_rq.hex"), .ZY(3), .LO(-128), .HI(127)) u_fc_rq (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fn_d), .s_axis_tvalid(fn_v), .s_axis_tready(fn_r), .s_axis_tlast(fn_l),
    .m_axis_tdata(fq_d), .m_axis_tvalid(fq_v), .m_axis_tready(fq_r), .m_axis_tlast(fq_l));
  rf_argmax #(.LANES(FC_RQ), .N(12), .APPEND(1)) u_argmax (
    .clk_i(clk_i), .rst_ni(rst_ni),
    .s_axis_tdata(fq_d), .s_axis_tvalid(fq_v), .s_axis_tready(fq_r), .s_axis_tlast(fq_l),
    .m_axis_tdata(m_axis_tdata), .m_axis_tuser(m_axis_tuser), .m_axis_tvalid(m_axis_tvalid),
    .m_axis_tready(m_axis_tready), .m_axis_tlast(m_axis_tlast));

endmodule
