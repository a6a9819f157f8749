// rf_fifo: AXI4-Stream FIFO of exactly DEPTH beats. Verilog-2005 (IEEE 1364-2005).
//
// Interface contract
//   s_axis_* : a beat moves when tvalid && tready. s_axis_tready is a function of registers
//              only: high while fewer than DEPTH beats are held.
//   m_axis_* : the beats in arrival order, tdata and tlast unchanged. m_axis_tvalid is a
//              register; tdata/tlast hold while tvalid && !tready (AXI-Stream rules).
//   Capacity: exactly DEPTH beats (the residual-branch sizing in README.md relies on it).
//   Reset: rst_ni asynchronous, active low, clears the control state (the FIFO is empty).
//
// Two storage styles (SYNC_READ):
//   0: a register array read combinationally. Latency 1 cycle (a beat accepted at edge t is
//      valid after edge t); sustains one beat per cycle for DEPTH >= 2 (DEPTH = 1 moves one
//      beat every 2 cycles, since tready is registered).
//   1: DEPTH - 1 words of synchronous-read memory (block-RAM friendly: the read register has
//      an enable and no input mux) plus the output register. Latency 2 cycles; one beat per
//      cycle for DEPTH >= 3 (DEPTH = 2 moves 2 beats every 3 cycles). Needs DEPTH >= 2.
//   The default picks 1 above 16 beats, where a register array stops being cheap.
`default_nettype none
`include "rf_check.vh"

module rf_fifo #(
  parameter integer WIDTH     = 8,                        // bits of tdata
  parameter integer DEPTH     = 2,                        // capacity in beats, >= 1
  parameter integer SYNC_READ = (DEPTH > 16) ? 1 : 0      // storage style, see above
) (
  input  wire             clk_i,
  input  wire             rst_ni,
  input  wire [WIDTH-1:0] s_axis_tdata,
  input  wire             s_axis_tvalid,
  output wire             s_axis_tready,
  input  wire             s_axis_tlast,
  output wire [WIDTH-1:0] m_axis_tdata,
  output wire             m_axis_tvalid,
  input  wire             m_axis_tready,
  output wire             m_axis_tlast
);

  `RF_CHECK(WIDTH >= 1, g_chk_width, "rf_fifo: WIDTH must be at least 1")
  `RF_CHECK(DEPTH >= 1, g_chk_depth, "rf_fifo: DEPTH must be at least 1")
  `RF_CHECK(SYNC_READ == 0 || SYNC_READ == 1, g_chk_style, "rf_fifo: SYNC_READ must be 0 or 1")
  `RF_CHECK(SYNC_READ == 0 || DEPTH >= 2, g_chk_sync, "rf_fifo: SYNC_READ = 1 needs DEPTH >= 2")

  localparam integer EW = WIDTH + 1;  // stored entry: {tlast, tdata}

  wire push = s_axis_tvalid & s_axis_tready;
  wire pop  = m_axis_tvalid & m_axis_tready;

  generate
    if (SYNC_READ == 0) begin : g_regs
      // Register array of DEPTH entries; pointers wrap at DEPTH (any integer).
      localparam integer PW = (DEPTH > 1) ? $clog2(DEPTH) : 1;
      localparam integer CW = $clog2(DEPTH + 1);
      localparam integer PTR_LAST_I = DEPTH - 1;
      localparam [PW-1:0] PTR_LAST = PTR_LAST_I[PW-1:0];
      localparam [CW-1:0] CNT_FULL = DEPTH[CW-1:0];
      reg [EW-1:0] mem_q [0:DEPTH-1];
      reg [PW-1:0] wptr_q, rptr_q;
      reg [CW-1:0] count_q;

      always @(posedge clk_i) begin
        if (push) begin
          mem_q[wptr_q] <= {s_axis_tlast, s_axis_tdata};
        end
      end

      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          wptr_q  <= {PW{1'b0}};
          rptr_q  <= {PW{1'b0}};
          count_q <= {CW{1'b0}};
        end else begin
          if (push) begin
            wptr_q <= (wptr_q == PTR_LAST) ? {PW{1'b0}} : wptr_q + 1'b1;
          end
          if (pop) begin
            rptr_q <= (rptr_q == PTR_LAST) ? {PW{1'b0}} : rptr_q + 1'b1;
          end
          if (push & ~pop) begin
            count_q <= count_q + 1'b1;
          end else if (pop & ~push) begin
            count_q <= count_q - 1'b1;
          end
        end
      end

      wire [EW-1:0] head = mem_q[rptr_q];
      assign s_axis_tready = (count_q != CNT_FULL);
      assign m_axis_tvalid = (count_q != {CW{1'b0}});
      assign m_axis_tdata  = head[WIDTH-1:0];
      assign m_axis_tlast  = head[WIDTH];
    end else begin : g_ram
      // MD = DEPTH - 1 memory words behind an output register. A beat is written to memory,
      // read into the output register when that register is (or is becoming) free.
      localparam integer MD = DEPTH - 1;
      localparam integer PW = (MD > 1) ? $clog2(MD) : 1;
      localparam integer CW = $clog2(MD + 1);
      localparam integer PTR_LAST_I = MD - 1;
      localparam [PW-1:0] PTR_LAST = PTR_LAST_I[PW-1:0];
      localparam [CW-1:0] CNT_FULL = MD[CW-1:0];
      reg [EW-1:0] mem_q [0:MD-1];
      reg [PW-1:0] wptr_q, rptr_q;
      reg [CW-1:0] mcount_q;      // words in memory not yet read
      reg [EW-1:0] out_q;
      reg          out_valid_q;

      wire load = (~out_valid_q | pop) & (mcount_q != {CW{1'b0}});

      always @(posedge clk_i) begin
        if (push) begin
          mem_q[wptr_q] <= {s_axis_tlast, s_axis_tdata};
        end
        if (load) begin
          out_q <= mem_q[rptr_q];
        end
      end

      always @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          wptr_q      <= {PW{1'b0}};
          rptr_q      <= {PW{1'b0}};
          mcount_q    <= {CW{1'b0}};
          out_valid_q <= 1'b0;
        end else begin
          if (push) begin
            wptr_q <= (wptr_q == PTR_LAST) ? {PW{1'b0}} : wptr_q + 1'b1;
          end
          if (load) begin
            rptr_q <= (rptr_q == PTR_LAST) ? {PW{1'b0}} : rptr_q + 1'b1;
          end
          if (push & ~load) begin
            mcount_q <= mcount_q + 1'b1;
          end else if (load & ~push) begin
            mcount_q <= mcount_q - 1'b1;
          end
          if (load) begin
            out_valid_q <= 1'b1;
          end else if (pop) begin
            out_valid_q <= 1'b0;
          end
        end
      end

      // Full when the memory is full and the output register holds a beat (memory words are
      // only waiting while the output register is occupied).
      assign s_axis_tready = ~(out_valid_q & (mcount_q == CNT_FULL));
      assign m_axis_tvalid = out_valid_q;
      assign m_axis_tdata  = out_q[WIDTH-1:0];
      assign m_axis_tlast  = out_q[WIDTH];
    end
  endgenerate

endmodule
