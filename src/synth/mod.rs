//! Hardware cost: yosys synthesis of generated RTL, per module and total.

pub mod yosys;

#[cfg(test)]
mod tests {
    use super::yosys::{Target, synthesize};

    /// Needs yosys (installed by `make test`): a real run on two tiny modules.
    #[test]
    fn yosys_counts_cells_and_flags_latches() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("t.v");
        std::fs::write(
            &v,
            "module mul8 (input wire clk_i, input wire [7:0] a_i, input wire [7:0] b_i,\n\
             output reg [15:0] y_o);\n  always @(posedge clk_i) y_o <= a_i * b_i;\nendmodule\n\
             module latchy (input wire en_i, input wire d_i, output reg q_o);\n\
             always @* if (en_i) q_o = d_i;\nendmodule\n",
        )
        .unwrap();
        let files = vec![v];
        let ice = synthesize(&files, "mul8", Target::Ice40, &dir.path().join("ice")).unwrap();
        assert!(ice.stats.luts() > 20, "{:?}", ice.stats);
        assert_eq!(ice.stats.ffs(), 16);
        assert_eq!(ice.latches, 0);
        let generic = synthesize(&files, "mul8", Target::Generic, &dir.path().join("gen")).unwrap();
        assert!(generic.stats.area_ge() > 100.0, "{:?}", generic.stats);
        let x = synthesize(&files, "mul8", Target::Xilinx, &dir.path().join("x")).unwrap();
        assert_eq!(x.stats.dsps(), 1, "{:?}", x.stats);
        let l = synthesize(&files, "latchy", Target::Generic, &dir.path().join("l")).unwrap();
        assert_eq!(l.latches, 1);
    }
}
