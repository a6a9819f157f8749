//! Names in generated RTL: bounded, unique and legal for any input name.
//!
//! Op and tensor names come from user files (TFLite names are often over 100 characters, with
//! `/`, `;` and spaces). They never become identifiers or file names directly: every generated
//! identifier is built from an index (`o3`, `s12`) that makes it unique, plus at most
//! [`MAX_FRAGMENT`] sanitized characters of the name for readability; the original name goes
//! into a comment (control characters replaced) and the manifest. So identifiers stay short
//! enough that Verilator never shortens them (the harness refers to them by name) and file
//! names stay far below any file system's limit.

use super::verilog::{KEYWORDS, is_identifier, sanitize};
use crate::error::input;
use anyhow::Result;

/// Most characters of a sanitized name kept in an identifier or file name.
pub const MAX_FRAGMENT: usize = 20;
/// Longest top module name (it prefixes the harness's C++ names and names `T.v`).
pub const MAX_TOP: usize = 48;
/// Top name when the model's name leaves nothing usable.
pub const FALLBACK_TOP: &str = "ratflow_top";

/// At most `max` characters of `sanitize(s)`, without a trailing `_` (may be empty).
pub fn fragment(s: &str, max: usize) -> String {
    let mut f: String = sanitize(s).chars().take(max).collect();
    while f.ends_with('_') {
        f.pop();
    }
    f
}

/// `o<i>` or `o<i>_<fragment>`: the prefix of every identifier and file of op `i`. The index
/// makes it unique; the fragment only helps people reading the Verilog.
pub fn op_prefix(i: usize, name: &str) -> String {
    let f = fragment(name, MAX_FRAGMENT);
    if f.is_empty() {
        format!("o{i}")
    } else {
        format!("o{i}_{f}")
    }
}

/// The top module name: `--top` if given (it must be a plain identifier of at most
/// [`MAX_TOP`] characters and not a library module's name), else the model name sanitized and
/// bounded; a name that had to be cut keeps uniqueness against other models through the first
/// 8 hex digits of the model hash.
pub fn top_name(explicit: Option<&str>, model_name: &str, hash: &str) -> Result<String> {
    if let Some(t) = explicit {
        if !is_identifier(t) || t.len() > MAX_TOP || t.starts_with("rf_") {
            return Err(input(format!(
                "--top {t:?} is not a usable module name: a letter, then letters, digits and \
                 single _ not at the end, at most {MAX_TOP} characters, not a Verilog keyword and \
                 not starting with rf_ (the library's prefix)"
            )));
        }
        return Ok(t.to_string());
    }
    let full = sanitize(model_name);
    let mut top = if full.chars().count() > MAX_TOP {
        let short = fragment(&full, MAX_TOP - 9);
        format!("{short}_{}", &hash[..8.min(hash.len())])
    } else {
        full
    };
    if top.starts_with("rf_") {
        top = format!("m_{top}");
    }
    if top.is_empty() || !is_identifier(&top) {
        top = FALLBACK_TOP.to_string();
    }
    Ok(top)
}

/// Text safe inside a `//` comment or a C string: printable ASCII kept, anything else `?`.
pub fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// A C string literal of arbitrary text (printable ASCII kept, quotes and backslashes
/// escaped, anything else `?`).
pub fn c_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in printable(s).chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // `??x` would be a trigraph in older C++ dialects.
            '?' => out.push_str("\\?"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a generated identifier is legal and not a keyword (checked on every name the
/// generator builds, so a bug here is an error, never bad Verilog).
pub fn check_identifier(s: &str) -> Result<()> {
    if is_identifier(s) && !KEYWORDS.contains(&s) && s.len() <= 100 {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "internal error: generated identifier {s:?} is not legal Verilog"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bounded_unique_and_legal() {
        let long = "functional_1/activation_1/Relu;functional_1/batch_normalization_1/FusedBatchNormV3;functional_1/depthwise_conv2d/depthwise;functional_1/depthwise_conv2d/BiasAdd";
        let a = op_prefix(3, long);
        assert!(a.len() <= 2 + 3 + MAX_FRAGMENT, "{a}");
        assert!(is_identifier(&a), "{a}");
        assert_eq!(op_prefix(3, "???"), "o3");
        assert_eq!(op_prefix(12, "conv 1"), "o12_conv_1");
        // Same name, different ops: different prefixes.
        assert_ne!(op_prefix(1, long), op_prefix(2, long));
        let t = top_name(None, &long.repeat(3), "0123456789abcdef").unwrap();
        assert!(
            t.len() <= MAX_TOP && is_identifier(&t) && t.ends_with("_01234567"),
            "{t}"
        );
        assert_eq!(top_name(None, "MNIST mlp", "00").unwrap(), "mnist_mlp");
        assert_eq!(top_name(None, "//", "00").unwrap(), FALLBACK_TOP);
        assert_eq!(top_name(None, "rf_net", "00").unwrap(), "m_rf_net");
        assert!(top_name(Some("rf_window"), "x", "00").is_err());
        assert!(top_name(Some("module"), "x", "00").is_err());
        assert!(top_name(Some(&"a".repeat(49)), "x", "00").is_err());
        assert_eq!(top_name(Some("my_top"), "x", "00").unwrap(), "my_top");
        assert_eq!(c_string("a\"b\\c\u{7}??="), "\"a\\\"b\\\\c\\?\\?\\?=\"");
        assert_eq!(printable("a\nb"), "a?b");
    }
}
