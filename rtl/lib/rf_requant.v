// rf_requant: requantizer lanes, y = clamp(rescale(acc, m, s) + Z_y, LO, HI) (DESIGN section 1).
// Verilog-2005 (IEEE 1364-2005).
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_tdata : LANES signed ACC_BITS-bit accumulators, lane p in [p*ACC_BITS +: ACC_BITS],
//                  the channels of a tensor in order (lane p of beat j of a pixel is channel
//                  (j mod (CH/LANES))*LANES + p: beats cycle through the CH/LANES channel groups).
//   m_axis_tdata : LANES int8 results, lane p in [p*8 +: 8]; tlast passes through.
//   m_axis_tvalid is a register; s_axis_tready = !m_axis_tvalid || m_axis_tready (the pipeline
//   stalls as a whole).
//   Latency 4 cycles (input register, product, rounding, clamp); one beat per cycle.
//   Reset: rst_ni asynchronous, active low (control state only).
//
// Forms (FORM, as rf_rescale):
//   0 per tensor, constant multiplier  (m = M, s = S for every channel: synthesis sees a*M)
//   1 per tensor, constant CSD shift-add (no multiplier)
//   2 per channel, ROM of (m, s) feeding one K_BITS-bit multiplier per lane
//   3 per channel, ROM of (CSD digits, s), DIGITS shifted adds per lane
// ROM (forms 2, 3): ROM_FILE for $readmemh, CH/LANES words; word g holds the entries of
//   channels g*LANES .. g*LANES+LANES-1, lane p in bits [p*EW +: EW]:
//     form 2: EW = K_BITS + 6, entry {s[5:0], m[K_BITS-1:0]}
//     form 3: EW = DIGITS*DB + 6, entry {s[5:0], digit[DIGITS-1], ..., digit[0]}, digit fields as
//             rf_rescale's d_i (DB = bits(K_BITS) + 2: {valid, negative, position}).
//   The ROM is read with a registered read (block-RAM friendly, no case ROM).
// m = 0 channels give clamp(Z_y, LO, HI) in every form (rescale is 0 for any s).
// Widths: every rescaled value is exact (rf_rescale derives its width), and rf_saturate
//   compares it at max(width, 10) bits with the constants HI - ZY and LO - ZY (both in
//   -255..255, so they fit 10 bits signed): no constant is truncated.
`default_nettype none
`include "rf_check.vh"

module rf_requant #(
  parameter integer LANES    = 1,    // accumulators per beat (lanes), divides CH
  parameter integer CH       = 1,    // channels of the tensor (ROM forms index by channel)
  parameter integer ACC_BITS = 32,   // accumulator width (bits, two's complement), 2..64
  parameter integer K_BITS   = 31,   // k: multiplicand width (bits), 1..31
  parameter integer ROUNDING = 0,    // 0 single, 1 double
  parameter integer FORM     = 0,    // 0 const mul, 1 const CSD, 2 ROM mul, 3 ROM CSD
  parameter integer M        = 0,    // forms 0/1: multiplicand, 0 <= M < 2^K_BITS
  parameter integer S        = 0,    // forms 0/1: shift 0..62
  parameter integer S_MIN    = 0,    // forms 2/3: smallest shift in the ROM
  parameter integer S_MAX    = 62,   // forms 2/3: largest shift in the ROM (<= 62)
  parameter integer DIGITS   = 1,    // form 3: CSD digit fields per entry
  parameter         ROM_FILE = "rf_requant.hex",  // forms 2/3: $readmemh image (string)
  parameter integer ZY       = 0,    // output zero point Z_y, -128..127
  parameter integer LO       = -128, // output clamp low (int8 code), -128..HI
  parameter integer HI       = 127   // output clamp high (int8 code), LO..127
) (
  input  wire                      clk_i,
  input  wire                      rst_ni,
  input  wire [LANES*ACC_BITS-1:0] s_axis_tdata,
  input  wire                      s_axis_tvalid,
  output wire                      s_axis_tready,
  input  wire                      s_axis_tlast,
  output wire [LANES*8-1:0]        m_axis_tdata,
  output wire                      m_axis_tvalid,
  input  wire                      m_axis_tready,
  output wire                      m_axis_tlast
);

`include "rf_functions.vh"

  localparam integer ROMF = (FORM >= 2) ? 1 : 0;
  localparam integer G    = (LANES > 0 && CH % LANES == 0) ? CH / LANES : 1;  // channel groups
  localparam integer PB   = f_ubits(K_BITS);
  localparam integer DB   = PB + 2;
  localparam integer EW   = (FORM == 3) ? DIGITS * DB + 6 : K_BITS + 6;  // ROM entry bits
  localparam integer MB   = (FORM >= 2) ? K_BITS : f_ubits(M);
  localparam integer RB   = f_rescale_bits(ACC_BITS, MB, K_BITS, (FORM >= 2) ? S_MIN : S, ROUNDING);
  localparam integer GW   = f_idx_bits(G);

  `RF_CHECK(LANES >= 1 && CH >= 1 && CH % LANES == 0, g_chk_lanes, "rf_requant: LANES must divide CH")
  // (rf_rescale checks ACC_BITS, K_BITS, ROUNDING, FORM, M, S, S_MIN, S_MAX and DIGITS;
  // rf_saturate checks ZY, LO and HI.)

  // ---------------------------------------------------------------------------------------------
  // Stall-all pipeline control: stage 1 input register, stages 2-3 inside rf_rescale, stage 4
  // clamp/output register.
  // ---------------------------------------------------------------------------------------------
  reg  v1_q, v2_q, v3_q, v4_q;
  reg  l1_q, l2_q, l3_q, l4_q;
  wire adv  = ~v4_q | m_axis_tready;
  wire fire = s_axis_tvalid & adv;
  assign s_axis_tready = adv;

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
      v2_q <= 1'b0;
      v3_q <= 1'b0;
      v4_q <= 1'b0;
    end else if (adv) begin
      v1_q <= fire;
      v2_q <= v1_q;
      v3_q <= v2_q;
      v4_q <= v3_q;
    end
  end
  always @(posedge clk_i) begin
    if (adv) begin
      l1_q <= s_axis_tlast;
      l2_q <= l1_q;
      l3_q <= l2_q;
      l4_q <= l3_q;
    end
  end

  reg [LANES*ACC_BITS-1:0] acc1_q;
  always @(posedge clk_i) begin
    if (fire) begin
      acc1_q <= s_axis_tdata;
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Per-channel constants (ROM forms): registered read of word g, the channel group of the
  // accepted beat.
  // ---------------------------------------------------------------------------------------------
  wire [LANES*EW-1:0] rom1;
  generate
    if (ROMF == 1) begin : g_rom
      localparam integer GLAST_I = G - 1;
      localparam [GW-1:0] GLAST = GLAST_I[GW-1:0];
      reg [LANES*EW-1:0] rom [0:G-1];
      reg [LANES*EW-1:0] rom1_q;
      reg [GW-1:0]       g_q;
      initial begin
        $readmemh(ROM_FILE, rom);
      end
      always @(posedge clk_i) begin
        if (fire) begin
          rom1_q <= rom[g_q];
        end
      end
      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          g_q <= {GW{1'b0}};
        end else if (fire) begin
          g_q <= (g_q == GLAST) ? {GW{1'b0}} : g_q + 1'b1;
        end
      end
      assign rom1 = rom1_q;
    end else begin : g_norom
      assign rom1 = {(LANES*EW){1'b0}};
    end
  endgenerate

  // ---------------------------------------------------------------------------------------------
  // Lanes: rescale (2 stages) then clamp into the output register.
  // ---------------------------------------------------------------------------------------------
  reg [LANES*8-1:0] y4_q;
  wire [LANES*8-1:0] y3;
  genvar p;
  generate
    for (p = 0; p < LANES; p = p + 1) begin : g_lane
      wire [EW-1:0] ent = rom1[p*EW +: EW];
      wire [K_BITS-1:0] m_l;
      wire [5:0] s_l;
      wire [DIGITS*DB-1:0] d_l;
      if (FORM == 2) begin : g_mul_fields
        assign m_l = ent[K_BITS-1:0];
        assign s_l = ent[K_BITS +: 6];
        assign d_l = {(DIGITS*DB){1'b0}};
      end else if (FORM == 3) begin : g_csd_fields
        assign m_l = {K_BITS{1'b0}};
        assign d_l = ent[DIGITS*DB-1:0];
        assign s_l = ent[DIGITS*DB +: 6];
      end else begin : g_const_fields
        wire unused_ent = ^ent;
        assign m_l = {K_BITS{1'b0}};
        assign s_l = 6'd0;
        assign d_l = {(DIGITS*DB){1'b0}};
      end

      wire [RB-1:0] r;
      rf_rescale #(
        .A_BITS  (ACC_BITS),
        .K_BITS  (K_BITS),
        .ROUNDING(ROUNDING),
        .FORM    (FORM),
        .M       (M),
        .S       (S),
        .S_MIN   (S_MIN),
        .S_MAX   (S_MAX),
        .DIGITS  (DIGITS)
      ) u_rescale (
        .clk_i(clk_i),
        .en_i (adv),
        .a_i  (acc1_q[p*ACC_BITS +: ACC_BITS]),
        .m_i  (m_l),
        .s_i  (s_l),
        .d_i  (d_l),
        .r_o  (r)
      );

      rf_saturate #(.R_BITS(RB), .ZY(ZY), .LO(LO), .HI(HI)) u_saturate (
        .r_i(r),
        .y_o(y3[p*8 +: 8])
      );
    end
  endgenerate

  always @(posedge clk_i) begin
    if (adv & v3_q) begin
      y4_q <= y3;
    end
  end

  assign m_axis_tvalid = v4_q;
  assign m_axis_tdata  = y4_q;
  assign m_axis_tlast  = l4_q;

endmodule
