{{ header }}
//
// Requantizer of layer `{{ layer_name }}`: y = clamp(round(acc * m * 2^-s) + Z, lo, 127) with
// {{ rounding_doc }}
// k = {{ k }}-bit multiplicand m, Z = {{ zero_point }}, lo = {{ lo }}{% if relu %} (fused ReLU){% endif %}.
// Multiplier form: {{ form_doc }}.
// Widths: {{ acc_bits }}-bit accumulators, {{ prod_bits }}-bit products (exact for every such acc and m).
// {{ lanes.len() }} lane(s); lane p handles channel {% if groups > 1 %}group_i * {{ p }} + p{% else %}p{% endif %}.
{%- if groups > 1 %}
// Channels are time-shared: each lane reads its channel's constants from a case ROM indexed by
// group_i{% if csd %} and adds up to {{ csd_slots }} shifted copies of acc (CSD digits of m).{% else %} and feeds one {{ k }}-bit multiplier.{% endif %}
{%- else %}
// Channels are parallel: every lane has its channel's m, s baked in as constants.
{%- endif %}
//
// Interface: a valid pipeline without back-pressure, one result per accepted input.
//   valid_i, {% if groups > 1 %}group_i, {% endif %}acc_i : a beat of {{ p }} signed {{ acc_bits }}-bit accumulators
//                   (lane p in bits [p*{{ acc_bits }} +: {{ acc_bits }}]), taken every cycle valid_i is high.
//   valid_o, q_o  : the int8 results (lane p in bits [p*8 +: 8]) exactly {{ latency }} cycles later.
module {{ module }} (
  input  wire clk_i,
  input  wire rst_ni,
  input  wire valid_i,
{%- if groups > 1 %}
  input  wire [{{ group_msb }}:0] group_i,
{%- endif %}
  input  wire [{{ acc_msb }}:0] acc_i,
  output wire valid_o,
  output wire [{{ q_msb }}:0] q_o
);

  // Valid pipeline: bit j is the valid of pipeline stage j. Every stage register loads only
  // when its input is valid (operand isolation: no switching, and a faster simulation).
  reg [{{ latency - 1 }}:0] valid_q;
  always @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_q <= {{ latency }}'d0;
    end else begin
      valid_q <= {{ valid_shift }};
    end
  end
  assign valid_o = valid_q[{{ latency - 1 }}];
{% for l in lanes %}
  // ------------------------------------------------------------------------------------------
  // Lane {{ l.index }}: {{ l.doc }}
  // ------------------------------------------------------------------------------------------
{%- if l.rom.len() > 0 %}
  // Case ROM: {{ l.rom_doc }}
{%- for f in l.rom_fields %}
  reg [{{ f.bits - 1 }}:0] {{ f.name }}_d;
{%- endfor %}
  always @(*) begin
    case (group_i)
{%- for r in l.rom %}
      {{ r.sel }}: begin {{ r.assigns }} end  // {{ r.doc }}
{%- endfor %}
      default: begin {{ l.rom_default }} end
    endcase
  end

  // Stage 0: operands.
  reg signed [{{ acc_bits - 1 }}:0] l{{ l.index }}_acc_q;
{%- for f in l.rom_fields %}
  reg [{{ f.bits - 1 }}:0] {{ f.name }}_q;
{%- endfor %}
  always @(posedge clk_i) begin
    if (valid_i) begin
      l{{ l.index }}_acc_q <= $signed(acc_i[{{ l.acc_msb }}:{{ l.acc_lsb }}]);
{%- for f in l.rom_fields %}
      {{ f.name }}_q <= {{ f.name }}_d;
{%- endfor %}
    end
  end
{%- else %}
  // Stage 0: operand.
  reg signed [{{ acc_bits - 1 }}:0] l{{ l.index }}_acc_q;
  always @(posedge clk_i) begin
    if (valid_i) begin
      l{{ l.index }}_acc_q <= $signed(acc_i[{{ l.acc_msb }}:{{ l.acc_lsb }}]);
    end
  end
{%- endif %}

  // Stage 1: {{ l.prod_doc }}
{%- if l.acc_unused %}
  wire unused_l{{ l.index }}_acc = ^l{{ l.index }}_acc_q;
{%- endif %}
{%- for w in l.prod_wires %}
  {{ w }}
{%- endfor %}
  wire signed [{{ prod_bits - 1 }}:0] l{{ l.index }}_prod_d = {{ l.mul_expr }};
  reg  signed [{{ prod_bits - 1 }}:0] l{{ l.index }}_prod_q;
{%- if l.rom.len() > 0 %}
  reg         [{{ l.sh_bits - 1 }}:0] l{{ l.index }}_sh1_q;
{%- endif %}
  always @(posedge clk_i) begin
    if (valid_q[0]) begin
      l{{ l.index }}_prod_q <= l{{ l.index }}_prod_d;
{%- if l.rom.len() > 0 %}
      l{{ l.index }}_sh1_q  <= l{{ l.index }}_sh_q;
{%- endif %}
    end
  end
{%- if double %}

  // Stage 2: SRDHM(acc, m << {{ 31 - k }}) = floor((acc * m + 2^{{ k - 1 }}) / 2^{{ k }}), always within {{ acc_bits }} bits.
  wire signed [{{ prod_bits - 1 }}:0] l{{ l.index }}_srd_sum = l{{ l.index }}_prod_q + {{ srd_round }};
  wire unused_l{{ l.index }}_srd = ^l{{ l.index }}_srd_sum[{{ k - 1 }}:0];
  reg  signed [{{ acc_bits - 1 }}:0] l{{ l.index }}_x_q;
{%- if l.rom.len() > 0 %}
  reg         [{{ l.sh_bits - 1 }}:0] l{{ l.index }}_sh2_q;
{%- endif %}
  always @(posedge clk_i) begin
    if (valid_q[1]) begin
      l{{ l.index }}_x_q <= l{{ l.index }}_srd_sum[{{ k + acc_bits - 1 }}:{{ k }}];
{%- if l.rom.len() > 0 %}
      l{{ l.index }}_sh2_q <= l{{ l.index }}_sh1_q;
{%- endif %}
    end
  end

  // Stage 3: RoundingDivideByPOT by n = s - {{ k }} (ties away from zero), then saturate.
{%- if l.rom.len() > 0 %}
  // x / 2^n rounded half away from zero = (x + 2^(n-1) - [x < 0 and n > 0]) >>> n.
  wire l{{ l.index }}_nudge = (l{{ l.index }}_sh2_q != {{ l.sh_bits }}'d0) & l{{ l.index }}_x_q[{{ acc_bits - 1 }}];
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_rnd = $signed(({{ l.r_bits }}'d1 << l{{ l.index }}_sh2_q) >> 1)
      - $signed({{ l.nudge_ext }});
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_sum = {{ l.x_ext }} + l{{ l.index }}_rnd;
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_r = l{{ l.index }}_sum >>> l{{ l.index }}_sh2_q;
{%- else if l.shift == 0 %}
  // n = 0: x passes unchanged.
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_r = {{ l.x_ext }};
{%- else %}
  // x / 2^{{ l.shift }} rounded half away from zero: add 2^{{ l.shift - 1 }}, or 2^{{ l.shift - 1 }} - 1 for a negative x.
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_sum = {{ l.x_ext }} + (l{{ l.index }}_x_q[{{ acc_bits - 1 }}] ? {{ l.rnd_neg }} : {{ l.rnd }});
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_r = l{{ l.index }}_sum >>> {{ l.shift }};
{%- endif %}
{%- else %}

  // Stage 2: (prod + 2^(s-1)) >>> s (round half up), then saturate.
{%- if l.rom.len() > 0 %}
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_sum = {{ l.prod_ext }} + $signed(({{ l.r_bits }}'d1 << l{{ l.index }}_sh1_q) >> 1);
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_r = l{{ l.index }}_sum >>> l{{ l.index }}_sh1_q;
{%- else if l.shift == 0 %}
  // s = 0: no rounding.
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_r = {{ l.prod_ext }};
{%- else %}
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_sum = {{ l.prod_ext }} + {{ l.rnd }};
  wire signed [{{ l.r_bits - 1 }}:0] l{{ l.index }}_r = l{{ l.index }}_sum >>> {{ l.shift }};
{%- endif %}
{%- endif %}
  // y = clamp(r + Z, lo, 127): r + Z > 127 iff r > {{ r_hi }}; r + Z < lo iff r < {{ r_lo }}.
  wire [7:0] l{{ l.index }}_y_d = (l{{ l.index }}_r > {{ l.hi_lit }}) ? 8'd127
                  : (l{{ l.index }}_r < {{ l.lo_lit }}) ? {{ lo_code }}
                  : l{{ l.index }}_r[7:0] + {{ zp_code }};
{% endfor %}
  // Output stage: all lanes' int8 results (lane p in bits [p*8 +: 8]).
  reg [{{ q_msb }}:0] q_q;
  always @(posedge clk_i) begin
    if ({{ last_en }}) begin
      q_q <= {{ q_concat }};
    end
  end
  assign q_o = q_q;

endmodule
