//! Small Verilog-2005 helpers: reserved words, identifiers, and the widths of integers.

/// Verilog-2005 reserved words (IEEE 1364-2005 annex B), which no generated name may take.
pub const KEYWORDS: &[&str] = &[
    "always",
    "and",
    "assign",
    "automatic",
    "begin",
    "buf",
    "bufif0",
    "bufif1",
    "case",
    "casex",
    "casez",
    "cell",
    "cmos",
    "config",
    "deassign",
    "default",
    "defparam",
    "design",
    "disable",
    "edge",
    "else",
    "end",
    "endcase",
    "endconfig",
    "endfunction",
    "endgenerate",
    "endmodule",
    "endprimitive",
    "endspecify",
    "endtable",
    "endtask",
    "event",
    "for",
    "force",
    "forever",
    "fork",
    "function",
    "generate",
    "genvar",
    "highz0",
    "highz1",
    "if",
    "ifnone",
    "incdir",
    "include",
    "initial",
    "inout",
    "input",
    "instance",
    "integer",
    "join",
    "large",
    "liblist",
    "library",
    "localparam",
    "macromodule",
    "medium",
    "module",
    "nand",
    "negedge",
    "nmos",
    "nor",
    "noshowcancelled",
    "not",
    "notif0",
    "notif1",
    "or",
    "output",
    "parameter",
    "pmos",
    "posedge",
    "primitive",
    "pull0",
    "pull1",
    "pulldown",
    "pullup",
    "pulsestyle_onevent",
    "pulsestyle_ondetect",
    "rcmos",
    "real",
    "realtime",
    "reg",
    "release",
    "repeat",
    "rnmos",
    "rpmos",
    "rtran",
    "rtranif0",
    "rtranif1",
    "scalared",
    "showcancelled",
    "signed",
    "small",
    "specify",
    "specparam",
    "strong0",
    "strong1",
    "supply0",
    "supply1",
    "table",
    "task",
    "time",
    "tran",
    "tranif0",
    "tranif1",
    "tri",
    "tri0",
    "tri1",
    "triand",
    "trior",
    "trireg",
    "unsigned",
    "use",
    "uwire",
    "vectored",
    "wait",
    "wand",
    "weak0",
    "weak1",
    "while",
    "wire",
    "wor",
    "xnor",
    "xor",
    "logic",
    "bit",
    "byte",
    "int",
];

/// Whether `s` is a plain Verilog identifier that is not a keyword. A leading or trailing `_`,
/// `__` and `$` (legal in Verilog) are refused: Verilator mangles them in the C++ names the
/// testbench uses.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
        && !KEYWORDS.contains(&s)
        && s.len() <= 200
}

/// A readable identifier made from arbitrary text: lowercase ASCII letters, digits and `_`.
pub fn sanitize(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    while out.contains("__") {
        out = out.replace("__", "_");
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() {
        return String::new();
    }
    if out.as_bytes()[0].is_ascii_digit() || KEYWORDS.contains(&out.as_str()) {
        format!("n_{out}")
    } else {
        out
    }
}

/// Bits of an unsigned counter that holds every value in `0..=max` (at least 1).
pub fn ubits(max: u64) -> u32 {
    (64 - max.leading_zeros()).max(1)
}

/// Bits of a two's complement value that holds every value in `lo..=hi` (at least 1).
pub fn sbits(lo: i64, hi: i64) -> u32 {
    (1..=64)
        .find(|&b| {
            let half = 1i128 << (b - 1);
            (lo as i128) >= -half && (hi as i128) < half
        })
        .unwrap_or(64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("mnist_mlp"));
        assert!(!is_identifier("_x1"));
        assert!(is_identifier("net_v2"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("module"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier("a$b"));
        assert!(!is_identifier("a__b"));
        assert!(!is_identifier("net_"));
        assert!(!is_identifier(""));
        assert_eq!(sanitize("MNIST-mlp v2"), "mnist_mlp_v2");
        assert_eq!(sanitize("1st"), "n_1st");
        assert_eq!(sanitize("wire"), "n_wire");
        assert_eq!(sanitize("--"), "");
    }

    #[test]
    fn widths() {
        assert_eq!(ubits(0), 1);
        assert_eq!(ubits(1), 1);
        assert_eq!(ubits(2), 2);
        assert_eq!(ubits(783), 10);
        assert_eq!(ubits(1023), 10);
        assert_eq!(ubits(1024), 11);
        assert_eq!(sbits(-128, 127), 8);
        assert_eq!(sbits(-129, 127), 9);
        assert_eq!(sbits(0, 128), 9);
        assert_eq!(sbits(0, 0), 1);
        assert_eq!(sbits(-1, 0), 1);
        assert_eq!(sbits(i32::MIN as i64, i32::MAX as i64), 32);
    }
}
