// rf_argmax: class of the final tensor (argmax of its int8 codes, ties to the lowest index,
// DESIGN section 1), optionally after the tensor itself. Verilog-2005 (IEEE 1364-2005).
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_* : the N codes of one tensor, LANES per beat (element l of beat b is index
//              b*LANES + l, in bits [l*8 +: 8]); N/LANES beats per tensor, counted here
//              (s_axis_tlast is not used).
//   m_axis_* : APPEND = 1: the N/LANES tensor beats unchanged (m_axis_tuser = 0), then one
//              class beat; APPEND = 0: the class beat only. The class beat carries the index
//              zero-extended in m_axis_tdata, m_axis_tuser = 1 and m_axis_tlast = 1 (tlast is
//              low on tensor beats: tensor and class form one packet).
//   m_axis_tvalid is a register; s_axis_tready = (!m_axis_tvalid || m_axis_tready) and, with
//   APPEND = 1, no class beat waiting.
//   Reset: rst_ni asynchronous, active low (control state only).
// Cycles: N/LANES + APPEND cycles per tensor (the class beat takes one cycle of the output);
//   latency 1 cycle.
`default_nettype none
`include "rf_check.vh"

module rf_argmax #(
  parameter integer LANES  = 1,   // codes per beat, divides N
  parameter integer N      = 10,  // elements of the tensor (classes)
  parameter integer APPEND = 1    // 1: tensor then class; 0: class only
) (
  input  wire               clk_i,
  input  wire               rst_ni,
  input  wire [LANES*8-1:0] s_axis_tdata,
  input  wire               s_axis_tvalid,
  output wire               s_axis_tready,
  input  wire               s_axis_tlast,
  output wire [LANES*8-1:0] m_axis_tdata,
  output wire               m_axis_tuser,
  output wire               m_axis_tvalid,
  input  wire               m_axis_tready,
  output wire               m_axis_tlast
);

`include "rf_functions.vh"

  localparam integer NB  = (LANES > 0) ? N / LANES : 1;   // beats per tensor
  localparam integer CB  = f_idx_bits(N);                 // class index bits
  localparam integer BB  = f_idx_bits(NB);
  localparam integer LB  = f_idx_bits(LANES);

  `RF_CHECK(LANES >= 1 && N >= 1 && N % LANES == 0, g_chk_lanes, "rf_argmax: LANES must divide N")
  `RF_CHECK(APPEND == 0 || APPEND == 1, g_chk_append, "rf_argmax: APPEND must be 0 or 1")
  `RF_CHECK(CB <= LANES * 8, g_chk_width, "rf_argmax: the class index does not fit a beat of LANES*8 bits")

  localparam integer NB1 = NB - 1;
  localparam [BB-1:0] B_LAST = NB1[BB-1:0];

  reg  [BB-1:0]      b_q;
  reg  signed [7:0]  best_q;
  reg  [CB-1:0]      bidx_q;
  reg                pend_q;     // APPEND: a class beat waits for the output register
  reg  [CB-1:0]      class_q;
  reg  [LANES*8-1:0] out_q;
  reg                ov_q, ou_q;
  wire unused_last = s_axis_tlast;

  wire adv  = ~ov_q | m_axis_tready;
  assign s_axis_tready = adv & ~pend_q;
  wire fire = s_axis_tvalid & s_axis_tready;
  wire last_b = (b_q == B_LAST);

  // Best lane of the beat (lowest lane on ties): scan from the top lane down with >=.
  reg signed [7:0] lbest;
  reg [LB-1:0]     llane;
  integer l;
  always @(*) begin
    lbest = $signed(s_axis_tdata[(LANES-1)*8 +: 8]);
    llane = LANES[LB-1:0] - 1'b1;
    for (l = LANES - 2; l >= 0; l = l - 1) begin
      if ($signed(s_axis_tdata[l*8 +: 8]) >= lbest) begin
        lbest = $signed(s_axis_tdata[l*8 +: 8]);
        llane = l[LB-1:0];
      end
    end
  end
  // Index of that lane; the running best is replaced only by a strictly larger code.
  localparam integer IW = CB + LB + BB;
  localparam [IW-1:0] LANES_C = LANES[IW-1:0];
  wire [IW-1:0] lidx_w = {{(IW - BB){1'b0}}, b_q} * LANES_C + {{(IW - LB){1'b0}}, llane};
  wire [CB-1:0]  lidx = lidx_w[CB-1:0];
  wire unused_lidx = ^lidx_w[IW-1:CB];
  wire           take = (b_q == {BB{1'b0}}) | (lbest > best_q);
  wire [CB-1:0]  cls  = take ? lidx : bidx_q;

  always @(posedge clk_i) begin
    if (fire) begin
      if (take) begin
        best_q <= lbest;
        bidx_q <= lidx;
      end
      if (last_b) begin
        class_q <= cls;
      end
    end
  end

  wire [LANES*8-1:0] class_word = {{(LANES*8 - CB){1'b0}}, (APPEND != 0) ? class_q : cls};

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      b_q    <= {BB{1'b0}};
      pend_q <= 1'b0;
      ov_q   <= 1'b0;
      ou_q   <= 1'b0;
    end else begin
      if (fire) begin
        b_q <= last_b ? {BB{1'b0}} : b_q + 1'b1;
      end
      if (APPEND != 0) begin
        if (adv) begin
          ov_q <= pend_q | fire;
          ou_q <= pend_q;
        end
        if (fire & last_b) begin
          pend_q <= 1'b1;
        end else if (adv) begin
          pend_q <= 1'b0;
        end
      end else begin
        if (adv) begin
          ov_q <= fire & last_b;
          ou_q <= 1'b1;
        end
      end
    end
  end

  always @(posedge clk_i) begin
    if (adv) begin
      if (APPEND != 0 && !pend_q) begin
        out_q <= s_axis_tdata;
      end else begin
        out_q <= class_word;
      end
    end
  end

  assign m_axis_tvalid = ov_q;
  assign m_axis_tdata  = out_q;
  assign m_axis_tuser  = ou_q;
  assign m_axis_tlast  = ou_q;

endmodule
