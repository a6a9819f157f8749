{{ header }}
// Verilog-2005 (IEEE 1364-2005). Read with the library: `-I .` / `+incdir+.` (rf_check.vh,
// rf_functions.vh); files.f lists every file in dependency order.
//
{%- for l in summary %}
// {{ l }}
{%- endfor %}
//
// Every stream below is an AXI4-Stream bundle <s>_data/_valid/_ready/_last (and _user): a beat
// moves when valid && ready. Reset rst_ni: asynchronous, active low.
`default_nettype none

module {{ top }} (
  input  wire                clk_i,
  input  wire                rst_ni,
  input  wire [7:0]          s_axis_tdata,
  input  wire                s_axis_tvalid,
  output wire                s_axis_tready,
  input  wire                s_axis_tlast,
  output wire [{{ out_msb }}:0] m_axis_tdata,
  output wire                m_axis_tuser,
  output wire                m_axis_tvalid,
  input  wire                m_axis_tready,
  output wire                m_axis_tlast
);
{% for w in wires %}
  // {{ w.name }}: {{ w.doc }}
  wire {{ w.data_range }}{{ w.name }}_data;
{%- if w.has_user %}
  wire {{ w.user_range }}{{ w.name }}_user;
{%- endif %}
  wire {{ w.valid_range }}{{ w.name }}_valid;
  wire {{ w.valid_range }}{{ w.name }}_ready;
  wire {{ w.name }}_last;
{%- if w.user_unused %}
  wire unused_{{ w.name }}_user = ^{{ w.name }}_user;  // pad flags: the MAC engines see Z_x instead
{%- endif %}
{% endfor %}
  assign {{ input }}_data  = s_axis_tdata;
  assign {{ input }}_valid = s_axis_tvalid;
  assign s_axis_tready = {{ input }}_ready;
  assign {{ input }}_last  = s_axis_tlast;

  assign m_axis_tdata  = {{ output }}_data;
  assign m_axis_tuser  = {{ output }}_user;
  assign m_axis_tvalid = {{ output }}_valid;
  assign {{ output }}_ready = m_axis_tready;
  assign m_axis_tlast  = {{ output }}_last;
{%- for s in sinks %}

  // {{ s.name }}: a graph output other than the first; nothing reads it.
  assign {{ s.ready }} = 1'b1;
  wire unused_sink_{{ s.name }} = ^{ {{ s.data }}, {{ s.last }}, {{ s.valid }} };
{%- endfor %}
{% for u in insts %}
  // {{ u.doc }}
  {{ u.module }} #(
{%- for p in u.params %}
    .{{ p.name }}({{ p.value }}){% if p.comma %},{% endif %}
{%- endfor %}
  ) {{ u.instance }} (
    .clk_i(clk_i),
    .rst_ni(rst_ni),
{%- for c in u.ports %}
    .{{ c.prefix }}_tdata({{ c.data }}),
{%- if let Some(user) = c.user %}
    .{{ c.prefix }}_tuser({{ user }}),
{%- endif %}
    .{{ c.prefix }}_tvalid({{ c.valid }}),
    .{{ c.prefix }}_tready({{ c.ready }}),
    .{{ c.prefix }}_tlast({{ c.last }}){% if c.comma %},{% endif %}
{%- endfor %}
  );
{% endfor %}
endmodule
