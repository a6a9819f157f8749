// rf_dwc: AXI4-Stream data-width converter between units with different lanes per beat.
// Verilog-2005 (IEEE 1364-2005).
//
// Elements keep their order: element e of the stream is lane e mod LANES of beat e / LANES,
// lane l in bits [l*ELEM_BITS +: ELEM_BITS] on both sides (NHWC order, channels fastest).
//   IN_LANES == OUT_LANES : wires.
//   IN_LANES = R*OUT_LANES: each input beat leaves as R output beats, lowest lanes first;
//              m_axis_tlast on the last of the R beats of an input beat with tlast.
//   OUT_LANES = R*IN_LANES: R input beats form one output beat, the first in the lowest
//              lanes; m_axis_tlast = tlast of the R-th input beat. The stream length must be a
//              multiple of OUT_LANES elements (it is when both lane counts divide C).
//   Other ratios are refused: chain two converters through gcd(IN_LANES, OUT_LANES).
// Handshake: m_axis_tvalid is a register (except in the wire case); s_axis_tready is
//   combinational in m_axis_tready (no bubble at full rate). Throughput: one output beat per
//   cycle when narrowing (R cycles per input beat), one input beat per cycle when widening;
//   latency 1 cycle.
//   Reset: rst_ni asynchronous, active low (control state only).
`default_nettype none
`include "rf_check.vh"

module rf_dwc #(
  parameter integer IN_LANES  = 2,  // elements per input beat
  parameter integer OUT_LANES = 1,  // elements per output beat
  parameter integer ELEM_BITS = 8   // bits per element
) (
  input  wire                           clk_i,
  input  wire                           rst_ni,
  input  wire [IN_LANES*ELEM_BITS-1:0]  s_axis_tdata,
  input  wire                           s_axis_tvalid,
  output wire                           s_axis_tready,
  input  wire                           s_axis_tlast,
  output wire [OUT_LANES*ELEM_BITS-1:0] m_axis_tdata,
  output wire                           m_axis_tvalid,
  input  wire                           m_axis_tready,
  output wire                           m_axis_tlast
);

`include "rf_functions.vh"

  `RF_CHECK(IN_LANES >= 1 && OUT_LANES >= 1 && ELEM_BITS >= 1, g_chk_pos, "rf_dwc: lanes and ELEM_BITS must be positive")
  `RF_CHECK(IN_LANES % OUT_LANES == 0 || OUT_LANES % IN_LANES == 0, g_chk_ratio, "rf_dwc: one lane count must divide the other (chain two converters through their gcd)")

  localparam integer IW = IN_LANES * ELEM_BITS;
  localparam integer OW = OUT_LANES * ELEM_BITS;

  generate
    if (IN_LANES == OUT_LANES) begin : g_wire
      wire unused_clk = ^{clk_i, rst_ni};
      assign m_axis_tdata  = s_axis_tdata;
      assign m_axis_tvalid = s_axis_tvalid;
      assign s_axis_tready = m_axis_tready;
      assign m_axis_tlast  = s_axis_tlast;
    end else if (IN_LANES > OUT_LANES) begin : g_narrow
      localparam integer R  = IN_LANES / OUT_LANES;
      localparam integer CB = f_idx_bits(R);
      localparam integer R1 = R - 1;
      localparam [CB-1:0] C_LAST = R1[CB-1:0];
      reg [IW-1:0] buf_q;
      reg [CB-1:0] cnt_q;
      reg          full_q, last_q;
      wire mfire = full_q & m_axis_tready;
      wire done  = mfire & (cnt_q == C_LAST);
      assign s_axis_tready = ~full_q | done;
      wire sfire = s_axis_tvalid & s_axis_tready;
      // The held beat stays put; a counter selects the output slice (an R:1 mux, not a
      // shifting register: cheaper to simulate for wide beats, same LUT cost).
      always @(posedge clk_i) begin
        if (sfire) begin
          buf_q  <= s_axis_tdata;
          last_q <= s_axis_tlast;
        end
      end
      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          cnt_q  <= {CB{1'b0}};
          full_q <= 1'b0;
        end else if (sfire) begin
          cnt_q  <= {CB{1'b0}};
          full_q <= 1'b1;
        end else if (mfire) begin
          cnt_q  <= cnt_q + 1'b1;
          full_q <= ~done;
        end
      end
      assign m_axis_tvalid = full_q;
      assign m_axis_tdata  = buf_q[cnt_q*OW +: OW];
      assign m_axis_tlast  = last_q & (cnt_q == C_LAST);
    end else begin : g_widen
      localparam integer R  = OUT_LANES / IN_LANES;
      localparam integer CB = f_idx_bits(R);
      localparam integer R1 = R - 1;
      localparam [CB-1:0] C_LAST = R1[CB-1:0];
      reg [OW-IW-1:0] acc_q;     // the first R-1 input beats
      reg [CB-1:0]    cnt_q;
      reg [OW-1:0]    out_q;
      reg             ov_q, ol_q;
      wire adv = ~ov_q | m_axis_tready;
      assign s_axis_tready = (cnt_q != C_LAST) | adv;
      wire sfire = s_axis_tvalid & s_axis_tready;
      wire complete = sfire & (cnt_q == C_LAST);
      always @(posedge clk_i) begin
        if (sfire & ~complete) begin
          acc_q[cnt_q*IW +: IW] <= s_axis_tdata;
        end
        if (complete) begin
          out_q <= {s_axis_tdata, acc_q};
          ol_q  <= s_axis_tlast;
        end
      end
      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          cnt_q <= {CB{1'b0}};
          ov_q  <= 1'b0;
        end else begin
          if (sfire) begin
            cnt_q <= complete ? {CB{1'b0}} : cnt_q + 1'b1;
          end
          if (complete) begin
            ov_q <= 1'b1;
          end else if (m_axis_tready) begin
            ov_q <= 1'b0;
          end
        end
      end
      assign m_axis_tvalid = ov_q;
      assign m_axis_tdata  = out_q;
      assign m_axis_tlast  = ol_q;
    end
  endgenerate

endmodule
