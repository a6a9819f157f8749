// rf_check.vh: elaboration-time parameter checks for the ratflow RTL library (Verilog-2005).
//
// `RF_CHECK(ok, name, msg) refuses a parameter combination for which `ok` is false:
//   - Verilator and yosys: a generate-if holding the elaboration system task $error. Both stop
//     while elaborating (Verilator: %Warning-USERERROR, fatal under --lint-only and --cc;
//     yosys: "ERROR: msg" from read_verilog / hierarchy -chparam).
//   - Icarus (`__ICARUS__`, which has no elaboration tasks): an `initial` block calling $error
//     then $fatal(1), so vvp stops at time 0 with exit status 1.
// (yosys 0.23 rejects $error inside initial blocks, Verilator evaluates initial blocks only
// when simulating and rejects the generate form under --default-language 1364-2005: hence the
// two spellings.) `name` is the generate-block label (unique within the module), `msg` a
// string literal without commas (it is a macro argument).
`ifndef RF_CHECK_VH
`define RF_CHECK_VH
`ifdef __ICARUS__
`define RF_CHECK(ok, name, msg) initial if (!(ok)) begin $error(msg); $fatal(1); end
`else
`define RF_CHECK(ok, name, msg) if (!(ok)) begin : name $error(msg); end
`endif
`endif
