//! Small Verilog-2005 text helpers: identifiers, sized literals, explicit extensions.
//!
//! Every literal the generator emits is sized and every extension is written out, because
//! `verilator -Wall` flags implicit width changes (see `shared/TOOLS.md`). The one place a
//! baked rescale constant is multiplied is [`const_mul`], which writes either form (a `*` or a
//! CSD shift-add).

use super::plan::MulForm;
use crate::quant::csd;

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

/// Bits of a two's complement value that holds every value in `lo..=hi` (at least 1).
pub fn sbits(lo: i64, hi: i64) -> u32 {
    (1..=64)
        .find(|&b| {
            let half = 1i128 << (b - 1);
            (lo as i128) >= -half && (hi as i128) < half
        })
        .unwrap_or(64)
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

/// The baked-constant multiply of a requantizer lane: the signed `acc_bits`-bit accumulator
/// `acc` times the unsigned k-bit constant `m`, as an expression of `acc_bits + k` bits (a
/// signed product that is exact for every accumulator and every k-bit m).
///
/// This is the only place a baked multiplicand becomes logic:
/// - [`MulForm::Mul`]: a `*` by the k-bit constant, zero-extended by one bit so the product is
///   signed;
/// - [`MulForm::Csd`]: no `*`: the sum of `±(acc << shift)` over the non-zero digits of m's
///   canonical signed-digit form ([`csd::digits`]), most significant first, each term written
///   as `{sign-extended acc, shift zero bits}` of exactly `acc_bits + k` bits. The sum is taken
///   modulo `2^(acc_bits + k)`, which is exact because the product fits (a digit's shift is at
///   most k, since m < 2^k). m = 0 is the constant 0 (the caller sinks the unused acc).
pub fn const_mul(acc: &str, acc_bits: u32, m: u32, k: u32, form: MulForm) -> String {
    match form {
        MulForm::Mul => format!("{acc} * $signed({{1'b0, {}}})", ulit(k, m as u128)),
        MulForm::Csd => {
            let w = acc_bits + k;
            let mut ds = csd::digits(m as u64);
            if ds.is_empty() {
                return ulit(w, 0);
            }
            ds.reverse();
            let mut out = String::new();
            for (i, d) in ds.iter().enumerate() {
                let op = match (i, d.negative) {
                    (0, false) => "",
                    (0, true) => "- ",
                    (_, false) => " + ",
                    (_, true) => " - ",
                };
                out.push_str(op);
                out.push_str(&shifted(acc, acc_bits, d.shift, w));
            }
            out
        }
    }
}

/// `sig` (signed, `from` bits) times `2^shift` as `to` bits: sign-extended to `to - shift`
/// bits, then `shift` zero bits.
pub fn shifted(sig: &str, from: u32, shift: u32, to: u32) -> String {
    assert!(
        to >= from + shift,
        "{from}-bit value << {shift} in {to} bits"
    );
    let ext = to - shift - from;
    let mut parts = Vec::new();
    if ext > 0 {
        parts.push(format!("{{{ext}{{{sig}[{}]}}}}", from - 1));
    }
    parts.push(sig.to_string());
    if shift > 0 {
        parts.push(ulit(shift, 0));
    }
    if parts.len() == 1 {
        sig.to_string()
    } else {
        format!("{{ {} }}", parts.join(", "))
    }
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
            const_mul("acc_q", 32, 201, 8, MulForm::Mul),
            "acc_q * $signed({1'b0, 8'd201})"
        );
        assert_eq!(sbits(-128, 127), 8);
        assert_eq!(sbits(-129, 127), 9);
        assert_eq!(sbits(0, 128), 9);
        assert_eq!(sbits(0, 0), 1);
        assert_eq!(sbits(-1, 0), 1);
        assert_eq!(sbits(i32::MIN as i64, i32::MAX as i64), 32);
    }

    #[test]
    fn csd_constant_products() {
        // 201 = 256 - 64 + 8 + 1: four terms, most significant first, each 20 + 8 bits wide.
        assert_eq!(
            const_mul("a", 20, 201, 8, MulForm::Csd),
            "{ a, 8'd0 } - { {2{a[19]}}, a, 6'd0 } + { {5{a[19]}}, a, 3'd0 } + { {8{a[19]}}, a }"
        );
        // A power of two is one term, 0 the constant zero.
        assert_eq!(
            const_mul("a", 16, 4, 4, MulForm::Csd),
            "{ {2{a[15]}}, a, 2'd0 }"
        );
        assert_eq!(const_mul("a", 16, 0, 4, MulForm::Csd), "20'd0");
        // 15 = 16 - 1: the top digit sits at bit k.
        assert_eq!(
            const_mul("a", 8, 15, 4, MulForm::Csd),
            "{ a, 4'd0 } - { {4{a[7]}}, a }"
        );
    }
}
