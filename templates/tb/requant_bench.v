{{ header }}
//
// Test wrapper (not part of any design): exposes the requantizers of several generated designs
// side by side so one Verilator build tests them all. Unit u's ports are u<u>_*; see each
// requantizer's own header for the interface contract.
module {{ module }} (
  input  wire clk_i,
  input  wire rst_ni,
{{ ports }}
);
{% for u in units %}
  // Unit {{ u.index }}: {{ u.doc }}
  {{ u.module }} u_unit{{ u.index }} (
    .clk_i   (clk_i),
    .rst_ni  (rst_ni),
    .valid_i (u{{ u.index }}_valid_i),
{%- if u.groups > 1 %}
    .group_i (u{{ u.index }}_group_i),
{%- endif %}
    .acc_i   (u{{ u.index }}_acc_i),
    .valid_o (u{{ u.index }}_valid_o),
    .q_o     (u{{ u.index }}_q_o)
  );
{% endfor %}
endmodule
