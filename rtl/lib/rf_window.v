// rf_window: sliding-window generator (line buffer) for conv2d, depthwise_conv2d and pools.
// Verilog-2005 (IEEE 1364-2005).
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_* : one input tensor [H][W][C] per frame in NHWC raster order, SIMD channels per beat
//              (element c of a beat in bits [c*8 +: 8], channels fastest): H*W*C/SIMD beats.
//              Frames follow each other back to back; the beat count delimits them
//              (s_axis_tlast is not used). s_axis_tready is a function of registers only.
//   m_axis_* : for every output pixel (oy, ox) in raster order, the KH*KW*C window elements,
//              SIMD per beat, in the order set by ORDER:
//                ORDER = 0: (ky, kx, c)            conv2d / dense-style MAC engines (rf_mac)
//                ORDER = 1: (c/SIMD, ky, kx, c%SIMD) per-channel consumers (rf_dwmac, pools)
//              Tap (ky, kx) of pixel (oy, ox) reads input (iy, ix) = (oy*SH - PT + ky*DH,
//              ox*SW - PL + kx*DW) (DESIGN section 5); a tap outside the input emits PAD_VALUE
//              (= Z_x) in every element and sets m_axis_tuser (one bit per element, all equal
//              within a beat: a beat holds one tap). m_axis_tlast marks the last beat of a frame.
//              m_axis_tvalid is a register; m_axis_tdata is a register or the constant
//              PAD_VALUE word selected by a register.
//   Output size OH = (H + PT + PB - (KH-1)*DH - 1)/SH + 1, OW likewise; both must be >= 1.
//   Reset: rst_ni asynchronous, active low (control state only).
//
// Buffer: BUF_WORDS = the next power of two >= MIN_WORDS + BUF_EXTRA words of SIMD*8 bits
//   (one synchronous-read memory, block-RAM friendly). MIN_WORDS, the least that can never
//   deadlock, is the window span ((KH-1)*DH*W + (KW-1)*DW + 1) * C/SIMD words, or
//   ((KH-1)*DH + 1) * W * C/SIMD when PT >= SH (output rows entirely above the input then
//   re-read the first input row). BUF_EXTRA (default SH rows) lets the writer run ahead.
//   A word is freed once no later pixel of the frame needs it; the writer writes while the
//   words still needed are fewer than BUF_WORDS; a pixel starts once every input word it
//   needs has arrived.
//
// Cycles: one output beat per cycle while the current pixel's inputs are present:
//   KH*KW*C/SIMD beats per output pixel, OH*OW*KH*KW*C/SIMD beats per frame, plus stalls
//   while the writer (one input beat per cycle at most) has not delivered a pixel's inputs:
//   the interval is max(OH*OW*KH*KW*C/SIMD, H*W*C/SIMD) cycles per frame when the input
//   stream keeps up (README.md gives the measured figures). Latency: 1 cycle from the edge
//   that makes a pixel's last needed input word available to its first output beat.
`default_nettype none
`include "rf_check.vh"

module rf_window #(
  parameter integer H         = 4,   // input height (pixels)
  parameter integer W         = 4,   // input width (pixels)
  parameter integer C         = 1,   // input channels
  parameter integer KH        = 3,   // kernel height (taps)
  parameter integer KW        = 3,   // kernel width (taps)
  parameter integer SH        = 1,   // vertical stride (pixels)
  parameter integer SW        = 1,   // horizontal stride (pixels)
  parameter integer DH        = 1,   // vertical dilation (pixels between taps)
  parameter integer DW        = 1,   // horizontal dilation
  parameter integer PT        = 0,   // padding rows above (pixels)
  parameter integer PB        = 0,   // padding rows below
  parameter integer PL        = 0,   // padding columns left
  parameter integer PR        = 0,   // padding columns right
  parameter integer SIMD      = 1,   // channels per beat (in and out), divides C
  parameter integer ORDER     = 0,   // 0: (ky, kx, c); 1: (c/SIMD, ky, kx, c%SIMD)
  parameter integer PAD_VALUE = 0,   // int8 code emitted for padding taps (Z_x), -128..127
  parameter integer BUF_EXTRA = -1   // buffer words beyond MIN_WORDS; -1: SH*W*C/SIMD
) (
  input  wire              clk_i,
  input  wire              rst_ni,
  input  wire [SIMD*8-1:0] s_axis_tdata,
  input  wire              s_axis_tvalid,
  output wire              s_axis_tready,
  input  wire              s_axis_tlast,
  output wire [SIMD*8-1:0] m_axis_tdata,
  output wire [SIMD-1:0]   m_axis_tuser,
  output wire              m_axis_tvalid,
  input  wire              m_axis_tready,
  output wire              m_axis_tlast
);

`include "rf_functions.vh"

  // ---------------------------------------------------------------------------------------------
  // Geometry.
  // ---------------------------------------------------------------------------------------------
  localparam integer CF   = (SIMD > 0) ? C / SIMD : 1;                       // channel groups
  localparam integer OH   = (SH > 0) ? (H + PT + PB - (KH - 1) * DH - 1) / SH + 1 : 1;
  localparam integer OW   = (SW > 0) ? (W + PL + PR - (KW - 1) * DW - 1) / SW + 1 : 1;
  localparam integer N    = H * W * CF;                                      // words per frame
  localparam integer SPAN = ((KH - 1) * DH * W + (KW - 1) * DW + 1) * CF;
  localparam integer ROWS = ((KH - 1) * DH + 1) * W * CF;
  localparam integer MIN_WORDS = (PT >= SH) ? f_max(SPAN, ROWS) : SPAN;
  localparam integer EXTRA = (BUF_EXTRA < 0) ? SH * W * CF : BUF_EXTRA;
  localparam integer AW   = f_max(1, f_ubits(MIN_WORDS + EXTRA - 1));        // address bits
  localparam integer BUF_WORDS = 1 << AW;
  // Signed index width: covers every tap index (negative in the padding) and 0..N+BUF_WORDS.
  localparam integer IBOUND = (H + PT + PB + KH * DH + SH) * (W + PL + PR + KW * DW + SW) * CF
                              + N + BUF_WORDS;
  localparam integer IW   = f_ubits(IBOUND) + 1;
  localparam integer YW   = f_ubits(H + PT + PB + KH * DH + SH) + 1;          // signed row bits
  localparam integer XW   = f_ubits(W + PL + PR + KW * DW + SW) + 1;          // signed col bits

  `RF_CHECK(H >= 1 && W >= 1 && C >= 1, g_chk_dims, "rf_window: H W C must be positive")
  `RF_CHECK(KH >= 1 && KW >= 1 && SH >= 1 && SW >= 1 && DH >= 1 && DW >= 1, g_chk_kernel, "rf_window: kernel strides and dilations must be positive")
  `RF_CHECK(PT >= 0 && PB >= 0 && PL >= 0 && PR >= 0, g_chk_pad, "rf_window: padding must be non-negative")
  `RF_CHECK(SIMD >= 1 && C % SIMD == 0, g_chk_simd, "rf_window: SIMD must divide C")
  `RF_CHECK(H + PT + PB >= (KH - 1) * DH + 1 && W + PL + PR >= (KW - 1) * DW + 1, g_chk_out, "rf_window: the dilated kernel must fit the padded input (OH and OW >= 1)")
  `RF_CHECK(ORDER == 0 || ORDER == 1, g_chk_order, "rf_window: ORDER must be 0 or 1")
  `RF_CHECK(PAD_VALUE >= -128 && PAD_VALUE <= 127, g_chk_padv, "rf_window: PAD_VALUE must be an int8 code")
  `RF_CHECK(IW <= 32, g_chk_size, "rf_window: tensor too large for 32-bit index arithmetic")

  // Index constants (IW-bit two's complement).
  localparam integer D_KX_I = DW * CF;                     // next kx
  localparam integer D_KY_I = DH * W * CF;                 // next ky
  localparam integer D_OX_I = SW * CF;                     // next output column
  localparam integer D_OY_I = SH * W * CF;                 // next output row
  localparam integer D_C0_I = DW * CF - (CF - 1);          // ORDER 0: cf wraps, kx advances
  localparam integer IDX0_I = -(PT * W + PL) * CF;         // index of tap (0, 0) of pixel (0, 0)
  localparam [IW-1:0] D_KX = D_KX_I[IW-1:0];
  localparam [IW-1:0] D_KY = D_KY_I[IW-1:0];
  localparam [IW-1:0] D_OX = D_OX_I[IW-1:0];
  localparam [IW-1:0] D_OY = D_OY_I[IW-1:0];
  localparam [IW-1:0] D_C0 = D_C0_I[IW-1:0];
  localparam [IW-1:0] IDX0 = IDX0_I[IW-1:0];
  localparam [IW-1:0] N_C  = N[IW-1:0];
  localparam [IW-1:0] W_C  = W[IW-1:0];
  localparam [IW-1:0] CF_C = CF[IW-1:0];
  localparam [IW-1:0] BUF_C = BUF_WORDS[IW-1:0];
  localparam [IW-1:0] ONE  = {{(IW - 1){1'b0}}, 1'b1};
  localparam [AW-1:0] N_AW = N[AW-1:0];                    // N mod BUF_WORDS

  // Coordinate constants.
  localparam integer MPT_I = -PT;
  localparam integer MPL_I = -PL;
  localparam integer KYS_I = (KH - 1) * DH;
  localparam integer KXS_I = (KW - 1) * DW;
  localparam integer HM1_I = H - 1;
  localparam integer WM1_I = W - 1;
  localparam [YW-1:0] Y_MPT = MPT_I[YW-1:0];
  localparam [YW-1:0] Y_SH  = SH[YW-1:0];
  localparam [YW-1:0] Y_DH  = DH[YW-1:0];
  localparam [YW-1:0] Y_KYS = KYS_I[YW-1:0];
  localparam [YW-1:0] Y_H   = H[YW-1:0];
  localparam [YW-1:0] Y_HM1 = HM1_I[YW-1:0];
  localparam [XW-1:0] X_MPL = MPL_I[XW-1:0];
  localparam [XW-1:0] X_SW  = SW[XW-1:0];
  localparam [XW-1:0] X_DW  = DW[XW-1:0];
  localparam [XW-1:0] X_KXS = KXS_I[XW-1:0];
  localparam [XW-1:0] X_W   = W[XW-1:0];
  localparam [XW-1:0] X_WM1 = WM1_I[XW-1:0];

  // Loop counter widths and limits.
  localparam integer OYB = f_idx_bits(OH);
  localparam integer OXB = f_idx_bits(OW);
  localparam integer KYB = f_idx_bits(KH);
  localparam integer KXB = f_idx_bits(KW);
  localparam integer CFB = f_idx_bits(CF);
  localparam integer OH1 = OH - 1;
  localparam integer OW1 = OW - 1;
  localparam integer KH1 = KH - 1;
  localparam integer KW1 = KW - 1;
  localparam integer CF1 = CF - 1;
  localparam [OYB-1:0] OY_LAST = OH1[OYB-1:0];
  localparam [OXB-1:0] OX_LAST = OW1[OXB-1:0];
  localparam [KYB-1:0] KY_LAST = KH1[KYB-1:0];
  localparam [KXB-1:0] KX_LAST = KW1[KXB-1:0];
  localparam [CFB-1:0] CF_LAST = CF1[CFB-1:0];

  localparam [7:0] PAD8 = PAD_VALUE[7:0];

  // ---------------------------------------------------------------------------------------------
  // State.
  // ---------------------------------------------------------------------------------------------
  reg  [OYB-1:0] oy_q;
  reg  [OXB-1:0] ox_q;
  reg  [KYB-1:0] ky_q;
  reg  [KXB-1:0] kx_q;
  reg  [CFB-1:0] cf_q;
  reg  [YW-1:0]  iy0_q, iy_q;   // signed input row of tap (0, *) and of the current tap
  reg  [XW-1:0]  ix0_q, ix_q;   // signed input column of tap (*, 0) and of the current tap
  reg  [IW-1:0]  ridx_q;        // index of (iy0, -PL, 0): the current output row's start
  reg  [IW-1:0]  pidx_q;        // index of (iy0, ix0, 0): the current pixel's tap (0, 0)
  reg  [IW-1:0]  cidx_q;        // ORDER 1: pidx + cf
  reg  [IW-1:0]  kidx_q;        // index of (iy, ix0, 0) (ORDER 0) or (iy, ix0, cf) (ORDER 1)
  reg  [IW-1:0]  idx_q;         // index of the current tap word
  reg  [IW-1:0]  avail_q;       // words of the reader's frame written so far (may pass N)
  reg            done_q;        // the reader finished its frame, waiting for the rest of it
  reg  [AW-1:0]  wslot_q;       // next write slot
  reg  [AW-1:0]  fslot_q;       // slot of word 0 of the reader's frame
  reg            v1_q, pad1_q, last1_q;
  reg  [SIMD*8-1:0] data1_q;

  // ---------------------------------------------------------------------------------------------
  // What a pixel needs and what is still needed from it on. Both are computed once per pixel,
  // for the next pixel, when the reader moves on (registered: no per-cycle recomputation).
  // ---------------------------------------------------------------------------------------------
  // Words of the frame that must have arrived before the pixel whose tap (0, 0) reads
  // (y0, x0) can start: up to its last row and column inside the input.
  function [IW-1:0] f_need;
    input [YW-1:0] y0;
    input [XW-1:0] x0;
    reg   [YW-1:0] yl, rm;
    reg   [XW-1:0] xl, cm;
    begin
      yl = y0 + Y_KYS;
      xl = x0 + X_KXS;
      rm = ($signed(yl) > $signed(Y_HM1)) ? Y_HM1 : yl;
      cm = ($signed(xl) > $signed(X_WM1)) ? X_WM1 : xl;
      f_need = ({{(IW - YW){rm[YW-1]}}, rm} * W_C + {{(IW - XW){cm[XW-1]}}, cm} + ONE) * CF_C;
    end
  endfunction
  // First word that this pixel or any later pixel of the frame may read: row max(0, y0), from
  // column max(0, x0) on, unless the next output row starts in the same input row (possible
  // only in the top padding), which re-reads that row from column 0.
  function [IW-1:0] f_base;
    input [YW-1:0] y0;
    input [XW-1:0] x0;
    reg   [YW-1:0] yn, r0, r0n;
    reg   [XW-1:0] c0;
    begin
      yn  = y0 + Y_SH;
      r0  = $signed(y0) < 0 ? {YW{1'b0}} : ($signed(y0) > $signed(Y_H) ? Y_H : y0);
      r0n = $signed(yn) < 0 ? {YW{1'b0}} : ($signed(yn) > $signed(Y_H) ? Y_H : yn);
      c0  = $signed(x0) < 0 ? {XW{1'b0}} : ($signed(x0) > $signed(X_W) ? X_W : x0);
      if (r0 == Y_H) begin
        f_base = N_C;
      end else begin
        f_base = ({{(IW - YW){1'b0}}, r0} * W_C + ((r0n != r0) ? {{(IW - XW){1'b0}}, c0} : {IW{1'b0}})) * CF_C;
      end
    end
  endfunction

  reg  [IW-1:0] need_q;   // f_need of the current pixel
  reg  [IW-1:0] base_q;   // f_base of the current pixel
  wire          pix_ready = $signed(avail_q) >= $signed(need_q);
  // The words before `base` are free (all of the frame once the reader finished it).
  wire [IW-1:0] base = done_q ? N_C : base_q;
  wire [IW-1:0] fill = avail_q - base;                          // words still needed (signed)

  // ---------------------------------------------------------------------------------------------
  // Writer.
  // ---------------------------------------------------------------------------------------------
  assign s_axis_tready = $signed(fill) < $signed(BUF_C);
  wire wr = s_axis_tvalid & s_axis_tready;
  wire unused_tlast = s_axis_tlast;

  reg [SIMD*8-1:0] buf_q [0:BUF_WORDS-1];
  always @(posedge clk_i) begin
    if (wr) begin
      buf_q[wslot_q] <= s_axis_tdata;
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Reader: loop counters and incremental indices.
  // ---------------------------------------------------------------------------------------------
  wire adv   = ~v1_q | m_axis_tready;
  wire issue = adv & ~done_q & pix_ready;

  wire last_cf = (cf_q == CF_LAST);
  wire last_kx = (kx_q == KX_LAST);
  wire last_ky = (ky_q == KY_LAST);
  wire last_ox = (ox_q == OX_LAST);
  wire last_oy = (oy_q == OY_LAST);
  wire last_tap = last_cf & last_kx & last_ky;
  wire last_pix = last_ox & last_oy;

  // The next pixel's coordinates and indices.
  wire [YW-1:0] iy0_n   = iy0_q + Y_SH;
  wire [YW-1:0] np_iy0  = last_ox ? (last_oy ? Y_MPT : iy0_n) : iy0_q;
  wire [XW-1:0] np_ix0  = last_ox ? X_MPL : ix0_q + X_SW;
  wire [IW-1:0] np_ridx = last_ox ? (last_oy ? IDX0 : ridx_q + D_OY) : ridx_q;
  wire [IW-1:0] np_pidx = last_ox ? np_ridx : pidx_q + D_OX;

  wire frame_end = issue & last_tap & last_pix;
  wire pend      = frame_end | done_q;
  wire switch_f  = pend & ($signed(avail_q) >= $signed(N_C));

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      oy_q    <= {OYB{1'b0}};
      ox_q    <= {OXB{1'b0}};
      ky_q    <= {KYB{1'b0}};
      kx_q    <= {KXB{1'b0}};
      cf_q    <= {CFB{1'b0}};
      iy0_q   <= Y_MPT;
      iy_q    <= Y_MPT;
      ix0_q   <= X_MPL;
      ix_q    <= X_MPL;
      ridx_q  <= IDX0;
      pidx_q  <= IDX0;
      cidx_q  <= IDX0;
      kidx_q  <= IDX0;
      idx_q   <= IDX0;
      avail_q <= {IW{1'b0}};
      done_q  <= 1'b0;
      wslot_q <= {AW{1'b0}};
      fslot_q <= {AW{1'b0}};
      need_q  <= f_need(Y_MPT, X_MPL);
      base_q  <= f_base(Y_MPT, X_MPL);
    end else begin
      avail_q <= avail_q + {{(IW - 1){1'b0}}, wr} - (switch_f ? N_C : {IW{1'b0}});
      done_q  <= pend & ~switch_f;
      if (wr) begin
        wslot_q <= wslot_q + 1'b1;
      end
      if (switch_f) begin
        fslot_q <= fslot_q + N_AW;
      end
      if (issue) begin
        if (ORDER == 0) begin
          // (ky, kx, cf), cf innermost.
          if (!last_cf) begin
            cf_q  <= cf_q + 1'b1;
            idx_q <= idx_q + ONE;
          end else begin
            cf_q <= {CFB{1'b0}};
            if (!last_kx) begin
              kx_q  <= kx_q + 1'b1;
              ix_q  <= ix_q + X_DW;
              idx_q <= idx_q + D_C0;
            end else begin
              kx_q <= {KXB{1'b0}};
              ix_q <= ix0_q;
              if (!last_ky) begin
                ky_q   <= ky_q + 1'b1;
                iy_q   <= iy_q + Y_DH;
                kidx_q <= kidx_q + D_KY;
                idx_q  <= kidx_q + D_KY;
              end else begin
                ky_q <= {KYB{1'b0}};
              end
            end
          end
        end else begin
          // (cf, ky, kx), kx innermost.
          if (!last_kx) begin
            kx_q  <= kx_q + 1'b1;
            ix_q  <= ix_q + X_DW;
            idx_q <= idx_q + D_KX;
          end else begin
            kx_q <= {KXB{1'b0}};
            ix_q <= ix0_q;
            if (!last_ky) begin
              ky_q   <= ky_q + 1'b1;
              iy_q   <= iy_q + Y_DH;
              kidx_q <= kidx_q + D_KY;
              idx_q  <= kidx_q + D_KY;
            end else begin
              ky_q <= {KYB{1'b0}};
              iy_q <= iy0_q;
              if (!last_cf) begin
                cf_q   <= cf_q + 1'b1;
                cidx_q <= cidx_q + ONE;
                kidx_q <= cidx_q + ONE;
                idx_q  <= cidx_q + ONE;
              end else begin
                cf_q <= {CFB{1'b0}};
              end
            end
          end
        end
        if (last_tap) begin
          // Next pixel (overrides the tap updates above).
          ox_q   <= last_ox ? {OXB{1'b0}} : ox_q + 1'b1;
          if (last_ox) begin
            oy_q <= last_oy ? {OYB{1'b0}} : oy_q + 1'b1;
          end
          iy0_q  <= np_iy0;
          iy_q   <= np_iy0;
          ix0_q  <= np_ix0;
          ix_q   <= np_ix0;
          ridx_q <= np_ridx;
          pidx_q <= np_pidx;
          cidx_q <= np_pidx;
          kidx_q <= np_pidx;
          idx_q  <= np_pidx;
          need_q <= f_need(np_iy0, np_ix0);
          base_q <= f_base(np_iy0, np_ix0);
        end
      end
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Output stage: registered buffer read (read enable = issue), padding substituted after it.
  // ---------------------------------------------------------------------------------------------
  wire pad = $signed(iy_q) < 0 || $signed(iy_q) >= $signed(Y_H) ||
             $signed(ix_q) < 0 || $signed(ix_q) >= $signed(X_W);
  wire [AW-1:0] rslot = fslot_q + idx_q[AW-1:0];
  wire unused_idx = ^idx_q[IW-1:AW];

  always @(posedge clk_i) begin
    if (issue) begin
      data1_q <= buf_q[rslot];
      pad1_q  <= pad;
      last1_q <= last_tap & last_pix;
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
    end else if (adv) begin
      v1_q <= issue;
    end
  end

  assign m_axis_tvalid = v1_q;
  assign m_axis_tdata  = pad1_q ? {SIMD{PAD8}} : data1_q;
  assign m_axis_tuser  = {SIMD{pad1_q}};
  assign m_axis_tlast  = last1_q;

endmodule
