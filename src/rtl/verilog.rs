//! Small Verilog-2005 text helpers: identifiers, sized literals, explicit extensions.
//!
//! Every literal the generator emits is sized and every extension is written out, because
//! `verilator -Wall` flags implicit width changes (see `shared/TOOLS.md`). The one place a
//! baked rescale constant is multiplied is [`const_mul`], so a different multiplier form
//! (CSD shift-add) replaces exactly one function.

/// Verilog-2005 reserved words (IEEE 1364-2005 annex B), which no generated name may take.
const KEYWORDS: &[&str] = &[
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

/// Unsigned sized decimal literal, `w'dv`.
pub fn ulit(w: u32, v: u128) -> String {
    debug_assert!(w >= 128 || v >> w == 0, "{v} does not fit {w} bits");
    format!("{w}'d{v}")
}

/// Signed sized literal `w'sdv`, or `-w'sd|v|` for a negative value.
pub fn slit(w: u32, v: i128) -> String {
    debug_assert!(
        w >= 2 && v.unsigned_abs() < 1u128 << (w - 1),
        "{v} in {w} bits"
    );
    if v < 0 {
        format!("-{w}'sd{}", v.unsigned_abs())
    } else {
        format!("{w}'sd{v}")
    }
}

/// `sig` (a signed `from`-bit value) sign-extended to `to` bits, written out explicitly; for
/// `to < from` its low `to` bits (two's complement wrap, exact whenever the value fits).
pub fn sext(sig: &str, from: u32, to: u32) -> String {
    if to < from {
        format!("{sig}[{}:0]", to - 1)
    } else if to == from {
        sig.to_string()
    } else {
        format!("{{ {{{}{{{sig}[{}]}}}}, {sig} }}", to - from, from - 1)
    }
}

/// `sig` (an unsigned `from`-bit value) zero-extended to `to` bits.
pub fn zext(sig: &str, from: u32, to: u32) -> String {
    debug_assert!(to >= from);
    if to == from {
        sig.to_string()
    } else {
        format!("{{ {}'d0, {sig} }}", to - from)
    }
}

/// The baked-constant multiply of a requantizer lane: the signed accumulator `acc` times the
/// unsigned k-bit constant `m`, as a signed expression of `acc`'s width plus `k` bits.
///
/// This is the only place a baked multiplicand becomes logic: a `*` by the k-bit constant,
/// zero-extended by one bit so the product is signed.
pub fn const_mul(acc: &str, m: u32, k: u32) -> String {
    format!("{acc} * $signed({{1'b0, {}}})", ulit(k, m as u128))
}

/// `-1.234e-5` style number for comments.
pub fn sci(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v:.6e}")
    }
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
    fn literals_and_extensions() {
        assert_eq!(ubits(0), 1);
        assert_eq!(ubits(1), 1);
        assert_eq!(ubits(2), 2);
        assert_eq!(ubits(783), 10);
        assert_eq!(ubits(1023), 10);
        assert_eq!(ubits(1024), 11);
        assert_eq!(ulit(8, 255), "8'd255");
        assert_eq!(slit(10, -133), "-10'sd133");
        assert_eq!(slit(10, 127), "10'sd127");
        assert_eq!(sext("a", 8, 8), "a");
        assert_eq!(sext("a", 16, 32), "{ {16{a[15]}}, a }");
        assert_eq!(sext("a", 16, 12), "a[11:0]");
        assert_eq!(zext("i_q", 3, 5), "{ 2'd0, i_q }");
        assert_eq!(
            const_mul("acc_q", 201, 8),
            "acc_q * $signed({1'b0, 8'd201})"
        );
    }
}
