{{ header }}
//
// Dense layer `{{ l.name }}`: {{ l.in_features }} inputs -> {{ l.out_features }} outputs{% if l.relu %}, fused ReLU{% endif %}.
//
// Datapath: acc[c] = b'[c] + sum_i x[i] * w[c][i], int8 x int8 products summed in {{ l.acc_bits }}-bit
// accumulators, where b'[c] = b[c] - Z_x * sum_i w[c][i] folds the input zero point Z_x = {{ l.input_zero_point }}
// into the bias. For any int8 inputs every partial sum lies in {{ l.acc_range.0 }}..={{ l.acc_range.1 }}
// (the prefixes of b' + sum_i x[i] * w[c][i] never leave the range of the full sum), which
// {{ l.acc_bits }} bits hold{% if l.acc_bits < 32 %} (the narrowest that can){% endif %}: the sums are exact.
// Parallelism P = {{ l.p }}: lane p computes channel g * {{ l.p }} + p in pass g; {{ l.groups }} pass(es) of
// {{ l.in_features }} MAC cycles each = {{ mac_cycles }} MAC cycles per inference.
{%- if pad_lanes > 0 %}
// The last pass has {{ l.last_group_len() }} real channel(s); its other {{ pad_lanes }} lane(s) compute padding
// (zero weights and bias) that is never emitted.
{%- endif %}
// Weights come from {{ l.weight_hex }} ({{ weight_words }} words of {{ l.p }} x int8, lane 0 in the low
// byte, word g * {{ l.in_features }} + i holds w[g*P + p][i]); folded biases from {{ l.bias_hex }}
// ({{ l.groups }} word(s) of {{ l.p }} x {{ l.acc_bits }} bits). Both are read with $readmemh from the
// simulator's or synthesis tool's working directory (override WeightFile/BiasFile).
//
// Interfaces (AXI-Stream rules: a beat moves when valid && ready; valid never waits for ready;
// valid and data hold while valid && !ready):
//   in_*  : {{ l.in_features }} beats per inference, one int8 activation per beat, feature 0 first.
//           Two input banks: the next inference loads while this one computes. in_ready_o is
//           high while a bank is free (a register, independent of in_valid_i).
//   out_* : {{ l.out_features }} beats per inference, one int8 output per beat, channel 0 first.
module {{ l.module }} #(
  parameter WeightFile = "{{ l.weight_hex }}",
  parameter BiasFile   = "{{ l.bias_hex }}"
) (
  input  wire       clk_i,
  input  wire       rst_ni,
  input  wire       in_valid_i,
  output wire       in_ready_o,
  input  wire [7:0] in_data_i,
  output wire       out_valid_o,
  input  wire       out_ready_i,
  output wire [7:0] out_data_o
);

  // ---------------------------------------------------------------------------------------------
  // Input buffer: two banks of {{ l.in_features }} activations, written in order, read by the MACs.
  // ---------------------------------------------------------------------------------------------
  reg  [7:0] x_mem [0:{{ x_depth - 1 }}];
  reg        wr_bank_q;
  reg  [{{ idx_bits - 1 }}:0] wr_idx_q;
  reg  [1:0] bank_full_q;     // bank b holds a complete inference not yet consumed
  reg        rd_bank_q;       // bank the MACs read
  wire       in_fire = in_valid_i & in_ready_o;
  wire       wr_last = (wr_idx_q == {{ idx_last }});
  wire [{{ xaddr_bits - 1 }}:0] wr_addr = wr_bank_q ? ({{ wr_idx_ext }} + {{ bank1_base }}) : {{ wr_idx_ext }};

  assign in_ready_o = ~bank_full_q[wr_bank_q];

  always @(posedge clk_i) begin
    if (in_fire) begin
      x_mem[wr_addr] <= in_data_i;
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      wr_bank_q <= 1'b0;
      wr_idx_q  <= {{ idx_zero }};
    end else if (in_fire) begin
      wr_idx_q <= wr_last ? {{ idx_zero }} : wr_idx_q + {{ idx_one }};
      if (wr_last) begin
        wr_bank_q <= ~wr_bank_q;
      end
    end
  end

  // ---------------------------------------------------------------------------------------------
  // MAC sequencer: pass g reads x[0..{{ l.in_features - 1 }}] and weight words g*{{ l.in_features }}+i. A pass starts
  // only when an output slot is free for its results (credit), then runs without stalling.
  // ---------------------------------------------------------------------------------------------
  reg  [{{ idx_bits - 1 }}:0] i_q;       // input index of the next issue
  reg  [{{ group_bits - 1 }}:0] g_q;       // pass (group) of the next issue
  reg  [{{ waddr_bits - 1 }}:0] waddr_q;   // weight ROM address of the next issue
  reg  [1:0] credit_q;  // output slots not claimed by a started pass
  wire       slot_release;  // the output side drained a slot this cycle
  wire       pass_start = (i_q == {{ idx_zero }});
  wire       issue = bank_full_q[rd_bank_q] & (~pass_start | (credit_q != 2'd0));
  wire       issue_last_i = (i_q == {{ idx_last }});
  wire       issue_last_g = (g_q == {{ group_last }});
  wire       frame_done = issue & issue_last_i & issue_last_g;
  wire [{{ xaddr_bits - 1 }}:0] rd_addr = rd_bank_q ? ({{ i_ext }} + {{ bank1_base }}) : {{ i_ext }};

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      i_q       <= {{ idx_zero }};
      g_q       <= {{ group_zero }};
      waddr_q   <= {{ waddr_zero }};
      rd_bank_q <= 1'b0;
    end else if (issue) begin
      i_q     <= issue_last_i ? {{ idx_zero }} : i_q + {{ idx_one }};
      waddr_q <= frame_done ? {{ waddr_zero }} : waddr_q + {{ waddr_one }};
      if (issue_last_i) begin
        g_q <= issue_last_g ? {{ group_zero }} : g_q + {{ group_one }};
      end
      if (frame_done) begin
        rd_bank_q <= ~rd_bank_q;
      end
    end
  end

  // A bank fills when its last beat arrives and empties when its last MAC read issues; the two
  // never coincide on one bank (a bank being written is not full, a bank being read is).
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      bank_full_q <= 2'b00;
    end else begin
      if (in_fire & wr_last) begin
        bank_full_q[wr_bank_q] <= 1'b1;
      end
      if (frame_done) begin
        bank_full_q[rd_bank_q] <= 1'b0;
      end
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      credit_q <= 2'd2;
    end else begin
      credit_q <= credit_q - {1'b0, issue & pass_start} + {1'b0, slot_release};
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Stage 1: ROM and buffer reads (registered, enabled by an issue).
  // ---------------------------------------------------------------------------------------------
  reg [{{ w_msb }}:0] w_rom [0:{{ weight_words - 1 }}];
  reg [{{ b_msb }}:0] b_rom [0:{{ l.groups - 1 }}];
  initial begin
    $readmemh(WeightFile, w_rom);
    $readmemh(BiasFile, b_rom);
  end

  reg [7:0]  x1_q;
  reg [{{ w_msb }}:0] w1_q;
  reg [{{ b_msb }}:0] b1_q;
  reg        v1_q;       // a MAC operand set is in stage 1
  reg        first1_q;   // ... and it is the first of its pass (load the bias)
  reg        last1_q;    // ... and the last of its pass
  reg [{{ group_bits - 1 }}:0] g1_q;
  always @(posedge clk_i) begin
    if (issue) begin
      x1_q     <= x_mem[rd_addr];
      w1_q     <= w_rom[waddr_q];
      b1_q     <= b_rom[g_q];
      first1_q <= pass_start;
      last1_q  <= issue_last_i;
      g1_q     <= g_q;
    end
  end
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q <= 1'b0;
    end else begin
      v1_q <= issue;
    end
  end

  // ---------------------------------------------------------------------------------------------
  // Stage 2: {{ l.p }} MAC lane(s): acc <= (first ? b' : acc) + x * w.
  // ---------------------------------------------------------------------------------------------
  // The int8 x int8 products, exact in 16 bits (lane p in bits [p*16 +: 16]).
  reg [{{ prod_msb }}:0] prod_all;
  integer q;
  always @(*) begin
    for (q = 0; q < {{ l.p }}; q = q + 1) begin
      prod_all[q*16 +: 16] = $signed(x1_q) * $signed(w1_q[q*8 +: 8]);
    end
  end
{%- if l.acc_bits < 16 %}
  // {{ l.acc_bits }}-bit accumulators add the low bits of each product (the sums are exact modulo
  // 2^{{ l.acc_bits }} and every true partial sum fits): the high product bits are deliberately unused.
  wire unused_prod = ^prod_all;
{%- endif %}

  // One packed register holds every lane's accumulator (lane p in bits [p*{{ l.acc_bits }} +: {{ l.acc_bits }}]), so the
  // requantizer reads all lanes at once without a copy.
  reg [{{ acc_msb }}:0] acc_all;
  integer p;
  always @(posedge clk_i) begin
    if (v1_q) begin
      for (p = 0; p < {{ l.p }}; p = p + 1) begin
        acc_all[p*{{ l.acc_bits }} +: {{ l.acc_bits }}] <= (first1_q ? b1_q[p*{{ l.acc_bits }} +: {{ l.acc_bits }}] : acc_all[p*{{ l.acc_bits }} +: {{ l.acc_bits }}])
            + {{ prod_term }};
      end
    end
  end

  // The pass that finished in stage 2 goes to the requantizer.
  reg                 rq_valid_q;
  reg  [{{ group_bits - 1 }}:0] rq_group_q;
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      rq_valid_q <= 1'b0;
    end else begin
      rq_valid_q <= v1_q & last1_q;
    end
  end
  always @(posedge clk_i) begin
    if (v1_q & last1_q) begin
      rq_group_q <= g1_q;
    end
  end
{%- if l.groups == 1 %}
  wire unused_rq_group = ^rq_group_q;
{%- endif %}

  // ---------------------------------------------------------------------------------------------
  // Requantizer ({{ requant_latency }} pipeline stages).
  // ---------------------------------------------------------------------------------------------
  wire            q_valid;
  wire [{{ q_msb }}:0] q_data;
  {{ l.requant_module }} u_requant (
    .clk_i   (clk_i),
    .rst_ni  (rst_ni),
    .valid_i (rq_valid_q),
{%- if l.groups > 1 %}
    .group_i (rq_group_q),
{%- endif %}
    .acc_i   (acc_all),
    .valid_o (q_valid),
    .q_o     (q_data)
  );

  // ---------------------------------------------------------------------------------------------
  // Output: two slots of {{ l.p }} results, drained one int8 per beat. A pass claims a slot (credit)
  // before it starts, so a result never finds its slot occupied.
  // ---------------------------------------------------------------------------------------------
  reg  [{{ q_msb }}:0] slot0_q, slot1_q;
  reg  [1:0]  slot_full_q;
  reg         slot_wr_q, slot_rd_q;
  reg  [{{ lane_bits - 1 }}:0] ocnt_q;     // beat within the pass being drained
  reg  [{{ group_bits - 1 }}:0] og_q;       // pass being drained
  wire        out_fire = out_valid_o & out_ready_i;
  wire        olast = (ocnt_q == (og_q == {{ group_last }} ? {{ last_lane_last }} : {{ lane_last }}));
  assign      slot_release = out_fire & olast;

  assign out_valid_o = slot_full_q[slot_rd_q];
  assign out_data_o  = slot_rd_q ? slot1_q[7:0] : slot0_q[7:0];

  always @(posedge clk_i) begin
    if (q_valid & ~slot_wr_q) begin
      slot0_q <= q_data;
    end else if (out_fire & ~slot_rd_q) begin
      slot0_q <= slot0_q >> 8;
    end
    if (q_valid & slot_wr_q) begin
      slot1_q <= q_data;
    end else if (out_fire & slot_rd_q) begin
      slot1_q <= slot1_q >> 8;
    end
  end

  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      slot_full_q <= 2'b00;
      slot_wr_q   <= 1'b0;
      slot_rd_q   <= 1'b0;
      ocnt_q      <= {{ lane_zero }};
      og_q        <= {{ group_zero }};
    end else begin
      if (q_valid) begin
        slot_full_q[slot_wr_q] <= 1'b1;
        slot_wr_q <= ~slot_wr_q;
      end
      if (out_fire) begin
        ocnt_q <= olast ? {{ lane_zero }} : ocnt_q + {{ lane_one }};
        if (olast) begin
          slot_full_q[slot_rd_q] <= 1'b0;
          slot_rd_q <= ~slot_rd_q;
          og_q <= (og_q == {{ group_last }}) ? {{ group_zero }} : og_q + {{ group_one }};
        end
      end
    end
  end

endmodule
