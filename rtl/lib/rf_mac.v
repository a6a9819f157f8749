// rf_mac: folded matrix-vector MAC engine for conv2d and dense (FINN MVAU-style PE/SIMD folding).
// Verilog-2005 (IEEE 1364-2005).
//
// Computes, for every input vector x of K int8 codes (a conv2d window in (ky, kx, c) order from
// rf_window ORDER = 0, or a dense layer's flattened input), the O accumulators
//     acc[o] = b[o] + sum_{i<K} (x[i] - ZX) * w[o][i]
// exactly modulo 2^ACC_BITS (so exactly whenever the true value fits ACC_BITS bits, which the
// generator proves per op from the weights: DESIGN section 5 bounds it by i32).
//   FOLD_ZX = 0: the datapath subtracts ZX (9-bit operands); B_FILE holds b[o].
//   FOLD_ZX = 1: the datapath multiplies the raw codes; B_FILE holds b[o] - ZX * sum_i w[o][i]
//                (bit-identical; padding taps carry x = ZX, so they still add 0 in total).
//
// Folding: PE output channels in parallel, SIMD input elements per cycle; PE divides O and
// SIMD divides K. NF = O/PE neuron folds, SF = K/SIMD synapse folds. Each vector is read once
// from the stream (fold 0) and replayed NF-1 times from a SF-word vector buffer.
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_* : SIMD int8 codes per beat (element s in bits [s*8 +: 8]), SF beats per vector,
//              vectors back to back; s_axis_tlast on the last beat of a frame's last vector.
//   m_axis_* : NF beats per vector, beat nf holds acc[nf*PE + p] in bits
//              [p*ACC_BITS +: ACC_BITS] (channels in order, i.e. NHWC for a conv). m_axis_tlast
//              on the last beat of a vector whose last input beat had tlast.
//   s_axis_tready = (fold 0) && (!m_axis_tvalid || m_axis_tready); m_axis_tvalid is a register.
//   Reset: rst_ni asynchronous, active low (control state only).
// ROMs ($readmemh, registered reads, block-RAM friendly):
//   W_FILE: NF*SF words of PE*SIMD*8 bits; word nf*SF + sf holds w[nf*PE + p][sf*SIMD + s]
//           in bits [(p*SIMD + s)*8 +: 8] (two's complement int8).
//   B_FILE: NF words of PE*ACC_BITS bits; word nf holds the bias of channel nf*PE + p in bits
//           [p*ACC_BITS +: ACC_BITS].
// Cycles: SF*NF cycles per vector, one MAC beat per cycle (no bubble between vectors or folds);
//   latency 2 cycles from a vector's last beat of a fold to that fold's output beat. The input
//   is taken in bursts (SF beats, then none for (NF-1)*SF cycles): a steady producer needs an
//   rf_fifo of about 2*SF beats in front to keep both at full rate.
`default_nettype none
`include "rf_check.vh"

module rf_mac #(
  parameter integer K        = 16,     // input elements per vector (KH*KW*C for a conv)
  parameter integer O        = 4,      // output channels
  parameter integer SIMD     = 4,      // input elements per cycle, divides K
  parameter integer PE       = 2,      // output channels in parallel, divides O
  parameter integer ZX       = 0,      // input zero point Z_x, -128..127
  parameter integer FOLD_ZX  = 0,      // 1: B_FILE holds b - ZX*sum(w), raw codes multiplied
  parameter integer ACC_BITS = 32,     // accumulator width (bits), 2..64
  parameter         W_FILE   = "rf_mac_w.hex",  // weight ROM image (string)
  parameter         B_FILE   = "rf_mac_b.hex"   // bias ROM image (string)
) (
  input  wire                   clk_i,
  input  wire                   rst_ni,
  input  wire [SIMD*8-1:0]      s_axis_tdata,
  input  wire                   s_axis_tvalid,
  output wire                   s_axis_tready,
  input  wire                   s_axis_tlast,
  output wire [PE*ACC_BITS-1:0] m_axis_tdata,
  output wire                   m_axis_tvalid,
  input  wire                   m_axis_tready,
  output wire                   m_axis_tlast
);

`include "rf_functions.vh"

  localparam integer SF   = (SIMD > 0) ? K / SIMD : 1;
  localparam integer NF   = (PE > 0) ? O / PE : 1;
  localparam integer SFB  = f_idx_bits(SF);
  localparam integer NFB  = f_idx_bits(NF);
  localparam integer WAB  = f_idx_bits(NF * SF);
  localparam integer XB   = (FOLD_ZX != 0) ? 8 : 9;              // operand bits
  localparam integer DOTW = XB + 8 + f_ubits(SIMD);              // exact SIMD-term dot product

  `RF_CHECK(K >= 1 && O >= 1, g_chk_dims, "rf_mac: K and O must be positive")
  `RF_CHECK(SIMD >= 1 && K % SIMD == 0, g_chk_simd, "rf_mac: SIMD must divide K")
  `RF_CHECK(PE >= 1 && O % PE == 0, g_chk_pe, "rf_mac: PE must divide O")
  `RF_CHECK(ZX >= -128 && ZX <= 127, g_chk_zx, "rf_mac: ZX must be an int8 code")
  `RF_CHECK(FOLD_ZX == 0 || FOLD_ZX == 1, g_chk_fold, "rf_mac: FOLD_ZX must be 0 or 1")
  `RF_CHECK(ACC_BITS >= 2 && ACC_BITS <= 64, g_chk_acc, "rf_mac: ACC_BITS must be in 2..64")

  localparam integer SF1 = SF - 1;
  localparam integer NF1 = NF - 1;
  localparam integer WA1 = NF * SF - 1;
  localparam [SFB-1:0] SF_LAST = SF1[SFB-1:0];
  localparam [NFB-1:0] NF_LAST = NF1[NFB-1:0];
  localparam [WAB-1:0] WA_LAST = WA1[WAB-1:0];
  localparam [8:0] ZX9 = ZX[8:0];

  // ---------------------------------------------------------------------------------------------
  // Issue: fold 0 takes its operands from the stream, later folds from the vector buffer.
  // ---------------------------------------------------------------------------------------------
  reg  [SFB-1:0] sf_q;
  reg  [NFB-1:0] nf_q;
  reg  [WAB-1:0] waddr_q;
  reg            vlast_q;   // the vector being replayed ended its frame
  reg            ov_q;      // output beat valid (acc_q holds a finished fold)
  wire adv      = ~ov_q | m_axis_tready;
  wire from_s   = (nf_q == {NFB{1'b0}});
  wire issue    = adv & (~from_s | s_axis_tvalid);
  wire last_sf  = (sf_q == SF_LAST);
  wire last_nf  = (nf_q == NF_LAST);
  assign s_axis_tready = adv & from_s;

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sf_q    <= {SFB{1'b0}};
      nf_q    <= {NFB{1'b0}};
      waddr_q <= {WAB{1'b0}};
      vlast_q <= 1'b0;
    end else if (issue) begin
      sf_q    <= last_sf ? {SFB{1'b0}} : sf_q + 1'b1;
      waddr_q <= (waddr_q == WA_LAST) ? {WAB{1'b0}} : waddr_q + 1'b1;
      if (last_sf) begin
        nf_q <= last_nf ? {NFB{1'b0}} : nf_q + 1'b1;
      end
      if (from_s & last_sf) begin
        vlast_q <= s_axis_tlast;
      end
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Stage 1: operands (registered ROM and buffer reads, enabled by issue).
  // ---------------------------------------------------------------------------------------------
  reg [PE*SIMD*8-1:0]   wrom [0:NF*SF-1];
  reg [PE*ACC_BITS-1:0] brom [0:NF-1];
  initial begin
    $readmemh(W_FILE, wrom);
    $readmemh(B_FILE, brom);
  end

  reg [SIMD*8-1:0]      xs1_q;      // operand from the stream
  reg [PE*SIMD*8-1:0]   w1_q;
  reg [PE*ACC_BITS-1:0] b1_q;
  reg                   v1_q, first1_q, last1_q, tl1_q;
  wire [SIMD*8-1:0]     x1;

  always @(posedge clk_i) begin
    if (issue) begin
      if (from_s) begin
        xs1_q <= s_axis_tdata;
      end
      w1_q     <= wrom[waddr_q];
      first1_q <= (sf_q == {SFB{1'b0}});
      last1_q  <= last_sf;
      tl1_q    <= last_sf & last_nf & (from_s ? s_axis_tlast : vlast_q);
    end
    if (issue & (sf_q == {SFB{1'b0}})) begin
      b1_q <= brom[nf_q];
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
    end else if (adv) begin
      v1_q <= issue;
    end
  end

  generate
    if (NF > 1) begin : g_vbuf
      // Vector buffer: written in fold 0, replayed (registered read) in folds 1..NF-1.
      reg [SIMD*8-1:0] vbuf [0:SF-1];
      reg [SIMD*8-1:0] xb1_q;
      reg              sel1_q;
      always @(posedge clk_i) begin
        if (issue & from_s) begin
          vbuf[sf_q] <= s_axis_tdata;
        end
        if (issue & ~from_s) begin
          xb1_q <= vbuf[sf_q];
        end
        if (issue) begin
          sel1_q <= ~from_s;
        end
      end
      assign x1 = sel1_q ? xb1_q : xs1_q;
    end else begin : g_novbuf
      assign x1 = xs1_q;
    end
  endgenerate

  // ---------------------------------------------------------------------------------------------
  // Stage 2: PE dot products of SIMD terms, accumulated. Every lane and term is its own
  // generate instance with constant bit positions (no variable part-selects, no packed
  // intermediate vector), which keeps both synthesis and Verilator's code straight-line.
  // ---------------------------------------------------------------------------------------------
  wire [SIMD*XB-1:0] xe;       // operands: x - ZX (9 bits) or x (8 bits)
  genvar e, g;
  generate
    for (e = 0; e < SIMD; e = e + 1) begin : g_operand
      if (FOLD_ZX != 0) begin : g_raw
        assign xe[e*XB +: XB] = x1[e*8 +: 8];
      end else begin : g_sub
        assign xe[e*XB +: XB] = {x1[e*8 + 7], x1[e*8 +: 8]} - ZX9;
      end
    end
  endgenerate

  // Dot product of one lane: SIMD products, each exact in XB + 8 bits, summed in DW signed bits
  // (sign extension throughout), returned modulo 2^ACC_BITS (exact whenever the final
  // accumulator fits). A function keeps the running sum a local variable: Verilator then
  // evaluates it only when the accumulator is enabled and in machine registers.
  localparam integer DW = f_max(DOTW, ACC_BITS);
  function [ACC_BITS-1:0] f_dot;
    input [SIMD*XB-1:0] xv;
    input [SIMD*8-1:0]  wv;
    reg signed [DW-1:0] sum_unused_hi;  // the bits above ACC_BITS are dropped (modulo)
    integer t;
    begin
      sum_unused_hi = {DW{1'b0}};
      for (t = 0; t < SIMD; t = t + 1) begin
        sum_unused_hi = sum_unused_hi + $signed(xv[t*XB +: XB]) * $signed(wv[t*8 +: 8]);
      end
      f_dot = sum_unused_hi[ACC_BITS-1:0];
    end
  endfunction

  // One register per lane (not slices of one packed vector): a slice at a bit position that
  // is not a multiple of 32 costs Verilator shifts and masks on every access, about 15% of a
  // DS-CNN's simulation time at minimal accumulator widths. The hardware is the same.
  reg otl_q;
  generate
    for (g = 0; g < PE; g = g + 1) begin : g_lane
      reg [ACC_BITS-1:0] acc_q;
      always @(posedge clk_i) begin
        if (adv & v1_q) begin
          acc_q <= (first1_q ? b1_q[g*ACC_BITS +: ACC_BITS] : acc_q)
                   + f_dot(xe, w1_q[g*SIMD*8 +: SIMD*8]);
        end
      end
      assign m_axis_tdata[g*ACC_BITS +: ACC_BITS] = acc_q;
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
