{{ header }}
//
// Network top: {{ input_len }} int8 inputs -> {% for l in layers %}{{ l.name }} ({{ l.out_features }}, P = {{ l.p }}) -> {% endfor %}argmax.
// Rescale: k = {{ k }}-bit multiplicands, {{ rounding }} rounding.
// Cycles (no back-pressure): latency {{ latency }} from the first input beat to the output beat,
// then one inference every {{ interval }} cycles on average in steady state.
//
// Interfaces (AXI-Stream rules: a beat moves when valid && ready; valid never waits for ready;
// valid and data hold while valid && !ready):
//   in_*  : {{ input_len }} beats per inference, one int8 input per beat (two's complement;
//           for MNIST x = pixel - 128), element 0 first. No tlast: the count delimits inferences.
//   out_* : one beat per inference: out_logits_o holds the int8 logit of class j in bits
//           [j*8 +: 8], out_class_o the index of the largest logit (ties: lowest index).
// Between layers, activations stream one int8 per beat with the same rules.
module {{ top }} (
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
{% for s in streams %}
  // {{ s.doc }}
  wire       {{ s.name }}_valid;
  wire       {{ s.name }}_ready;
  wire [7:0] {{ s.name }}_data;
{%- endfor %}

  assign {{ first_stream }}_valid = in_valid_i;
  assign in_ready_o = {{ first_stream }}_ready;
  assign {{ first_stream }}_data = in_data_i;
{% for l in layers %}
  {{ l.module }} {{ l.instance }} (
    .clk_i       (clk_i),
    .rst_ni      (rst_ni),
    .in_valid_i  ({{ l.src }}_valid),
    .in_ready_o  ({{ l.src }}_ready),
    .in_data_i   ({{ l.src }}_data),
    .out_valid_o ({{ l.dst }}_valid),
    .out_ready_i ({{ l.dst }}_ready),
    .out_data_o  ({{ l.dst }}_data)
  );
{% endfor %}
  {{ argmax_module }} u_argmax (
    .clk_i        (clk_i),
    .rst_ni       (rst_ni),
    .in_valid_i   ({{ last_stream }}_valid),
    .in_ready_o   ({{ last_stream }}_ready),
    .in_data_i    ({{ last_stream }}_data),
    .out_valid_o  (out_valid_o),
    .out_ready_i  (out_ready_i),
    .out_logits_o (out_logits_o),
    .out_class_o  (out_class_o)
  );

endmodule
