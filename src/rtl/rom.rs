//! `$readmemh` ROM images: one word per line, the whole word one hex number with lane 0 in the
//! least significant bits (the library's convention, `rtl/lib/README.md`). Every field is
//! checked against its width while packing: a value that does not fit is an error naming the
//! ROM, word and lane, never a silently wrapped bit pattern.

use anyhow::{Result, bail};

/// A field of a ROM word: `value` in `bits` bits, two's complement when `signed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub value: i64,
    pub bits: u32,
    pub signed: bool,
}

impl Field {
    pub fn signed(value: i64, bits: u32) -> Field {
        Field {
            value,
            bits,
            signed: true,
        }
    }

    pub fn unsigned(value: i64, bits: u32) -> Field {
        Field {
            value,
            bits,
            signed: false,
        }
    }

    /// Whether the value fits the field.
    pub fn fits(&self) -> bool {
        let b = self.bits.min(64);
        if self.bits == 0 {
            return false;
        }
        if self.signed {
            let lo = -(1i128 << (b - 1));
            let hi = (1i128 << (b - 1)) - 1;
            (lo..=hi).contains(&(self.value as i128))
        } else {
            self.value >= 0 && (self.bits >= 64 || (self.value as u64) >> b == 0)
        }
    }
}

/// One ROM image being built.
#[derive(Clone, Debug, PartialEq)]
pub struct Rom {
    /// File name (bounded: see `names`).
    pub file: String,
    /// Word width in bits.
    pub word_bits: usize,
    /// Hex digits per word, most significant first.
    pub words: Vec<String>,
    /// What the ROM holds (comment lines at the top of the file).
    pub doc: String,
}

impl Rom {
    pub fn new(file: String, word_bits: usize, doc: String) -> Rom {
        Rom {
            file,
            word_bits,
            words: Vec::new(),
            doc,
        }
    }

    /// Appends a word of `fields` (field 0 in the lowest bits); their widths must add up to
    /// the word width and every value must fit its field.
    pub fn push(&mut self, fields: &[Field]) -> Result<()> {
        let total: usize = fields.iter().map(|f| f.bits as usize).sum();
        if total != self.word_bits {
            bail!(
                "internal error: ROM {} word {} has {total} bits of fields, expected {}",
                self.file,
                self.words.len(),
                self.word_bits
            );
        }
        let mut nibbles = vec![0u8; total.div_ceil(4)];
        let mut pos = 0usize;
        for (lane, f) in fields.iter().enumerate() {
            if !f.fits() {
                bail!(
                    "ROM {} word {} field {lane}: {} does not fit {} {} bits",
                    self.file,
                    self.words.len(),
                    f.value,
                    if f.signed { "signed" } else { "unsigned" },
                    f.bits
                );
            }
            for b in 0..f.bits as usize {
                // Bits past 63 repeat the sign (signed) or are 0 (unsigned, fits checked).
                if (f.value >> b.min(63)) & 1 == 1 {
                    let p = pos + b;
                    nibbles[p / 4] |= 1 << (p % 4);
                }
            }
            pos += f.bits as usize;
        }
        self.words.push(
            nibbles
                .iter()
                .rev()
                .map(|n| char::from_digit(*n as u32, 16).expect("a nibble"))
                .collect(),
        );
        Ok(())
    }

    /// The file text: `//` comment lines (all three tools accept them), then one word per line.
    pub fn text(&self, header: &str) -> String {
        let mut s = String::with_capacity(self.words.len() * (self.word_bits / 4 + 2) + 512);
        for l in header.lines().chain(self.doc.lines()) {
            s.push_str("// ");
            s.push_str(l);
            s.push('\n');
        }
        for w in &self.words {
            s.push_str(w);
            s.push('\n');
        }
        s
    }

    pub fn bits(&self) -> u64 {
        (self.words.len() * self.word_bits) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_pack_lane_zero_low_and_refuse_what_does_not_fit() {
        let mut r = Rom::new("t.hex".into(), 16, String::new());
        r.push(&[Field::signed(-1, 8), Field::signed(2, 8)])
            .unwrap();
        r.push(&[Field::unsigned(5, 4), Field::signed(-8, 12)])
            .unwrap();
        assert_eq!(r.words, vec!["02ff", "ff85"]);
        assert!(
            r.push(&[Field::signed(128, 8), Field::signed(0, 8)])
                .is_err()
        );
        assert!(
            r.push(&[Field::unsigned(256, 8), Field::signed(0, 8)])
                .is_err()
        );
        assert!(
            r.push(&[Field::unsigned(-1, 8), Field::signed(0, 8)])
                .is_err()
        );
        assert!(r.push(&[Field::signed(0, 8)]).is_err());
        // 40-bit fields straddle nibbles and words of 64 bits.
        let mut w = Rom::new("w.hex".into(), 80, String::new());
        w.push(&[Field::signed(-2, 40), Field::signed(1 << 38, 40)])
            .unwrap();
        assert_eq!(w.words[0], "4000000000fffffffffe");
        let t = w.text("head");
        assert!(t.starts_with("// head\n4000"));
    }
}
