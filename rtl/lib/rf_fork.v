// rf_fork: AXI4-Stream broadcast of one stream to NOUT consumers (a tensor read by several
// ops, e.g. a residual block's input). Verilog-2005 (IEEE 1364-2005).
//
// Interface contract (AXI4-Stream rules: a beat moves when tvalid && tready; tvalid never waits
// for tready; payload holds while tvalid && !tready):
//   s_axis_* : the stream.
//   m_axis_* : NOUT copies sharing m_axis_tdata/m_axis_tlast, each with its own tvalid/tready
//              bit: output i carries every beat once, consumers advance independently within
//              one beat (a beat is held until every consumer has taken it).
//   m_axis_tvalid bits are registers; s_axis_tready = every output has taken the held beat or
//   takes it in this cycle (combinational in m_axis_tready). Latency 1 cycle; one beat per
//   cycle when every consumer is ready.
//   Reset: rst_ni asynchronous, active low (control state only).
// Deadlock note: a consumer that waits for another consumer's output before taking its beat
// (the add at the end of a residual branch) needs a FIFO on the shorter path; README.md gives
// the depth from the static schedule.
`default_nettype none
`include "rf_check.vh"

module rf_fork #(
  parameter integer NOUT  = 2,  // consumers, >= 1
  parameter integer WIDTH = 8   // bits of tdata
) (
  input  wire             clk_i,
  input  wire             rst_ni,
  input  wire [WIDTH-1:0] s_axis_tdata,
  input  wire             s_axis_tvalid,
  output wire             s_axis_tready,
  input  wire             s_axis_tlast,
  output wire [WIDTH-1:0] m_axis_tdata,
  output wire [NOUT-1:0]  m_axis_tvalid,
  input  wire [NOUT-1:0]  m_axis_tready,
  output wire             m_axis_tlast
);

  `RF_CHECK(NOUT >= 1 && WIDTH >= 1, g_chk_pos, "rf_fork: NOUT and WIDTH must be positive")

  reg [WIDTH-1:0] data_q;
  reg             last_q;
  reg [NOUT-1:0]  pend_q;   // outputs that still have to take the held beat

  assign s_axis_tready = ~|(pend_q & ~m_axis_tready);
  wire sfire = s_axis_tvalid & s_axis_tready;

  always @(posedge clk_i) begin
    if (sfire) begin
      data_q <= s_axis_tdata;
      last_q <= s_axis_tlast;
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      pend_q <= {NOUT{1'b0}};
    end else if (sfire) begin
      pend_q <= {NOUT{1'b1}};
    end else begin
      pend_q <= pend_q & ~m_axis_tready;
    end
  end

  assign m_axis_tvalid = pend_q;
  assign m_axis_tdata  = data_q;
  assign m_axis_tlast  = last_q;

endmodule
