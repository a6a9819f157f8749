// rf_dwmac: depthwise MAC engine (DEPTHWISE_CONV_2D). Verilog-2005 (IEEE 1364-2005).
//
// For every output pixel, input channel c and multiplier d (output channel o = c*DM + d,
// DESIGN section 5):
//     acc[o] = b[o] + sum_{t < KK} (x_t[c] - ZX) * w[t][o]
// over the KK = KH*KW taps t = ky*KW + kx, exactly modulo 2^ACC_BITS (FOLD_ZX as in rf_mac:
// 1 means B_FILE holds b[o] - ZX * sum_t w[t][o] and the datapath multiplies raw codes).
//
// Folding: SIMD input channels per cycle (SIMD divides C), each feeding its DM multipliers:
// LANES = SIMD*DM output channels in parallel, one product per lane per cycle (no adder tree).
// CF = C/SIMD channel groups per pixel, KK cycles each.
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_* : the window stream of rf_window with ORDER = 1: per pixel, for each channel group
//              cf, the KK taps in (ky, kx) order, SIMD channels cf*SIMD + j per beat (element j
//              in bits [j*8 +: 8]); padding taps carry ZX (so they add 0). tlast on the frame's
//              last beat. (m_axis_tuser of the window is not needed.)
//   m_axis_* : one beat per (pixel, cf): lane l = j*DM + d in bits [l*ACC_BITS +: ACC_BITS]
//              holds acc[(cf*SIMD + j)*DM + d], i.e. output channels cf*LANES .. cf*LANES +
//              LANES - 1 in order (NHWC). tlast on the beat that consumed the input tlast.
//   s_axis_tready = !m_axis_tvalid || m_axis_tready; m_axis_tvalid is a register.
//   Reset: rst_ni asynchronous, active low (control state only).
// ROMs ($readmemh, registered reads):
//   W_FILE: CF*KK words of LANES*8 bits; word cf*KK + t holds w[t][(cf*SIMD + j)*DM + d] in
//           bits [(j*DM + d)*8 +: 8].
//   B_FILE: CF words of LANES*ACC_BITS bits; word cf holds the bias of channel
//           (cf*SIMD + j)*DM + d in bits [(j*DM + d)*ACC_BITS +: ACC_BITS].
// Cycles: KK*CF per output pixel (one input beat per cycle), latency 2 cycles from a group's
//   last tap to its output beat.
`default_nettype none
`include "rf_check.vh"

module rf_dwmac #(
  parameter integer C        = 8,      // input channels
  parameter integer DM       = 1,      // depth multiplier (output channels per input channel)
  parameter integer KK       = 9,      // taps per window (KH*KW)
  parameter integer SIMD     = 4,      // input channels per beat, divides C
  parameter integer ZX       = 0,      // input zero point Z_x, -128..127
  parameter integer FOLD_ZX  = 0,      // 1: B_FILE holds b - ZX*sum(w), raw codes multiplied
  parameter integer ACC_BITS = 32,     // accumulator width (bits), 2..64
  parameter         W_FILE   = "rf_dwmac_w.hex",  // weight ROM image (string)
  parameter         B_FILE   = "rf_dwmac_b.hex"   // bias ROM image (string)
) (
  input  wire                           clk_i,
  input  wire                           rst_ni,
  input  wire [SIMD*8-1:0]              s_axis_tdata,
  input  wire                           s_axis_tvalid,
  output wire                           s_axis_tready,
  input  wire                           s_axis_tlast,
  output wire [SIMD*DM*ACC_BITS-1:0]    m_axis_tdata,
  output wire                           m_axis_tvalid,
  input  wire                           m_axis_tready,
  output wire                           m_axis_tlast
);

`include "rf_functions.vh"

  localparam integer L    = SIMD * DM;                          // lanes
  localparam integer CF   = (SIMD > 0) ? C / SIMD : 1;
  localparam integer TB   = f_idx_bits(KK);
  localparam integer CFB  = f_idx_bits(CF);
  localparam integer WAB  = f_idx_bits(CF * KK);
  localparam integer XB   = (FOLD_ZX != 0) ? 8 : 9;
  localparam integer PW   = XB + 8;                             // product bits

  `RF_CHECK(C >= 1 && DM >= 1 && KK >= 1, g_chk_dims, "rf_dwmac: C DM KK must be positive")
  `RF_CHECK(SIMD >= 1 && C % SIMD == 0, g_chk_simd, "rf_dwmac: SIMD must divide C")
  `RF_CHECK(ZX >= -128 && ZX <= 127, g_chk_zx, "rf_dwmac: ZX must be an int8 code")
  `RF_CHECK(FOLD_ZX == 0 || FOLD_ZX == 1, g_chk_fold, "rf_dwmac: FOLD_ZX must be 0 or 1")
  `RF_CHECK(ACC_BITS >= 2 && ACC_BITS <= 64, g_chk_acc, "rf_dwmac: ACC_BITS must be in 2..64")

  localparam integer KK1 = KK - 1;
  localparam integer CF1 = CF - 1;
  localparam integer WA1 = CF * KK - 1;
  localparam [TB-1:0]  T_LAST  = KK1[TB-1:0];
  localparam [CFB-1:0] CF_LAST = CF1[CFB-1:0];
  localparam [WAB-1:0] WA_LAST = WA1[WAB-1:0];
  localparam [8:0] ZX9 = ZX[8:0];

  reg  [TB-1:0]  t_q;
  reg  [CFB-1:0] cf_q;
  reg  [WAB-1:0] waddr_q;
  reg            ov_q;
  wire adv   = ~ov_q | m_axis_tready;
  wire issue = adv & s_axis_tvalid;
  wire last_t = (t_q == T_LAST);
  assign s_axis_tready = adv;

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      t_q     <= {TB{1'b0}};
      cf_q    <= {CFB{1'b0}};
      waddr_q <= {WAB{1'b0}};
    end else if (issue) begin
      t_q     <= last_t ? {TB{1'b0}} : t_q + 1'b1;
      waddr_q <= (waddr_q == WA_LAST) ? {WAB{1'b0}} : waddr_q + 1'b1;
      if (last_t) begin
        cf_q <= (cf_q == CF_LAST) ? {CFB{1'b0}} : cf_q + 1'b1;
      end
    end
  end

  // Stage 1: operands.
  reg [L*8-1:0]        wrom [0:CF*KK-1];
  reg [L*ACC_BITS-1:0] brom [0:CF-1];
  initial begin
    $readmemh(W_FILE, wrom);
    $readmemh(B_FILE, brom);
  end
  reg [SIMD*8-1:0]     x1_q;
  reg [L*8-1:0]        w1_q;
  reg [L*ACC_BITS-1:0] b1_q;
  reg                  v1_q, first1_q, last1_q, tl1_q;
  always @(posedge clk_i) begin
    if (issue) begin
      x1_q     <= s_axis_tdata;
      w1_q     <= wrom[waddr_q];
      first1_q <= (t_q == {TB{1'b0}});
      last1_q  <= last_t;
      tl1_q    <= s_axis_tlast;
    end
    if (issue & (t_q == {TB{1'b0}})) begin
      b1_q <= brom[cf_q];
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
    end else if (adv) begin
      v1_q <= issue;
    end
  end

  // Stage 2: one product per lane, accumulated, each lane in its own register (a packed vector
  // sliced at positions that are not multiples of 32 costs Verilator shifts and masks).
  reg                  otl_q;
  genvar j, d;
  generate
    for (j = 0; j < SIMD; j = j + 1) begin : g_chan
      wire [XB-1:0] xe;
      if (FOLD_ZX != 0) begin : g_raw
        assign xe = x1_q[j*8 +: 8];
      end else begin : g_sub
        assign xe = {x1_q[j*8 + 7], x1_q[j*8 +: 8]} - ZX9;
      end
      for (d = 0; d < DM; d = d + 1) begin : g_mult
        localparam integer LN = j * DM + d;
        wire [PW-1:0] prod = $signed(xe) * $signed(w1_q[LN*8 +: 8]);
        wire [ACC_BITS-1:0] prod_acc;
        if (ACC_BITS > PW) begin : g_ext
          assign prod_acc = {{(ACC_BITS - PW){prod[PW-1]}}, prod};
        end else begin : g_trunc
          assign prod_acc = prod[ACC_BITS-1:0];  // modulo 2^ACC_BITS
          if (ACC_BITS < PW) begin : g_unused
            wire unused_prod = ^prod[PW-1:ACC_BITS];
          end
        end
        reg [ACC_BITS-1:0] acc_q;
        always @(posedge clk_i) begin
          if (adv & v1_q) begin
            acc_q <= (first1_q ? b1_q[LN*ACC_BITS +: ACC_BITS] : acc_q) + prod_acc;
          end
        end
        assign m_axis_tdata[LN*ACC_BITS +: ACC_BITS] = acc_q;
      end
    end
  endgenerate

  always @(posedge clk_i) begin
    if (adv & v1_q & last1_q) begin
      otl_q <= tl1_q;
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ov_q <= 1'b0;
    end else if (adv) begin
      ov_q <= v1_q & last1_q;
    end
  end

  assign m_axis_tvalid = ov_q;
  assign m_axis_tlast  = otl_q;

endmodule
