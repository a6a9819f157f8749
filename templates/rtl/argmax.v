{{ header }}
//
// Output collector: gathers the {{ classes }} int8 logits of the last layer into one beat and
// computes the class, the index of the largest logit (ties go to the lowest index).
//
// Interfaces (AXI-Stream rules: a beat moves when valid && ready; valid never waits for ready;
// valid and data hold while valid && !ready):
//   in_*  : {{ classes }} beats per inference, one int8 logit per beat, class 0 first. in_ready_o
//           is low (a register) from the last logit until the result moves to the output register.
//   out_* : one beat per inference: out_logits_o holds logit j in bits [j*8 +: 8], out_class_o
//           the class index.
module {{ module }} (
  input  wire       clk_i,
  input  wire       rst_ni,
  input  wire       in_valid_i,
  output wire       in_ready_o,
  input  wire [7:0] in_data_i,
  output wire       out_valid_o,
  input  wire       out_ready_i,
  output wire [{{ logits_msb }}:0] out_logits_o,
  output wire [{{ class_bits - 1 }}:0] out_class_o
);

  reg  [{{ cnt_bits - 1 }}:0] cnt_q;       // logits collected so far, 0..{{ classes }}
  reg  [{{ logits_msb }}:0] logits_q;    // shift register: the newest logit enters at the top
  reg  signed [7:0] best_q;
  reg  [{{ class_bits - 1 }}:0] best_idx_q;
  reg         out_valid_q;
  reg  [{{ logits_msb }}:0] out_logits_q;
  reg  [{{ class_bits - 1 }}:0] out_class_q;

  wire        full = (cnt_q == {{ cnt_full }});
  wire        in_fire = in_valid_i & in_ready_o;
  wire        move = full & (~out_valid_q | out_ready_i);
  wire        better = (cnt_q == {{ cnt_zero }}) | ($signed(in_data_i) > best_q);

  assign in_ready_o   = ~full;
  assign out_valid_o  = out_valid_q;
  assign out_logits_o = out_logits_q;
  assign out_class_o  = out_class_q;

  always @(posedge clk_i) begin
    if (in_fire) begin
      logits_q <= {{ shift_in }};
      if (better) begin
        best_q     <= in_data_i;
        best_idx_q <= {{ cnt_as_class }};
      end
    end
    if (move) begin
      out_logits_q <= logits_q;
      out_class_q  <= best_idx_q;
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      cnt_q       <= {{ cnt_zero }};
      out_valid_q <= 1'b0;
    end else begin
      if (move) begin
        cnt_q       <= {{ cnt_zero }};
        out_valid_q <= 1'b1;
      end else begin
        if (in_fire) begin
          cnt_q <= cnt_q + {{ cnt_one }};
        end
        if (out_valid_q & out_ready_i) begin
          out_valid_q <= 1'b0;
        end
      end
    end
  end

endmodule
