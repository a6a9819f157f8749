//! A JSON value together with its path from the document root, so that every type or range
//! error can say exactly where it is (`layers[1].multiplier[7] = 300 ...`).

use crate::error::input;
use anyhow::Result;
use serde_json::Value;

pub struct Cursor<'a> {
    value: &'a Value,
    path: String,
}

impl<'a> Cursor<'a> {
    pub fn root(value: &'a Value) -> Self {
        Cursor {
            value,
            path: String::new(),
        }
    }

    pub fn value(&self) -> &'a Value {
        self.value
    }

    fn name(&self) -> &str {
        if self.path.is_empty() {
            "the document"
        } else {
            &self.path
        }
    }

    /// An input error about this value: `"{path} {what}"`.
    pub fn error(&self, what: impl AsRef<str>) -> anyhow::Error {
        input(format!("{} {}", self.name(), what.as_ref()))
    }

    fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn opt_field(&self, key: &str) -> Option<Cursor<'a>> {
        self.value.get(key).map(|v| Cursor {
            value: v,
            path: self.child_path(key),
        })
    }

    pub fn field(&self, key: &str) -> Result<Cursor<'a>> {
        if !self.value.is_object() {
            return Err(self.error(format!("must be an object, found {}", kind(self.value))));
        }
        self.opt_field(key)
            .ok_or_else(|| input(format!("{}: missing", self.child_path(key))))
    }

    pub fn array(&self) -> Result<Vec<Cursor<'a>>> {
        let items = self
            .value
            .as_array()
            .ok_or_else(|| self.error(format!("must be an array, found {}", kind(self.value))))?;
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| Cursor {
                value: v,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    /// The members of an object, in file order.
    pub fn entries(&self) -> Result<Vec<(&'a str, Cursor<'a>)>> {
        let map = self
            .value
            .as_object()
            .ok_or_else(|| self.error(format!("must be an object, found {}", kind(self.value))))?;
        Ok(map
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    Cursor {
                        value: v,
                        path: format!("{}.{k:?}", self.path),
                    },
                )
            })
            .collect())
    }

    /// A nested array of integers in `lo..=hi` with exactly the dimensions `dims` (outermost
    /// first), flattened row-major. Lengths are checked level by level as the data is read, so
    /// nothing is allocated from a declared size the file does not back.
    pub fn int_tensor(&self, dims: &[usize], lo: i64, hi: i64) -> Result<Vec<i64>> {
        let mut out = Vec::new();
        self.int_tensor_into(dims, lo, hi, &mut out)?;
        Ok(out)
    }

    fn int_tensor_into(&self, dims: &[usize], lo: i64, hi: i64, out: &mut Vec<i64>) -> Result<()> {
        match dims.split_first() {
            None => {
                out.push(self.int_in(lo, hi)?);
                Ok(())
            }
            Some((&n, rest)) => {
                for item in self.array_len(n)? {
                    item.int_tensor_into(rest, lo, hi, out)?;
                }
                Ok(())
            }
        }
    }

    /// An array that must have exactly `len` entries.
    pub fn array_len(&self, len: usize) -> Result<Vec<Cursor<'a>>> {
        let items = self.array()?;
        if items.len() != len {
            return Err(self.error(format!("has {} entries, expected {len}", items.len())));
        }
        Ok(items)
    }

    pub fn string(&self) -> Result<&'a str> {
        self.value
            .as_str()
            .ok_or_else(|| self.error(format!("must be a string, found {}", kind(self.value))))
    }

    pub fn bool(&self) -> Result<bool> {
        self.value
            .as_bool()
            .ok_or_else(|| self.error(format!("must be true or false, found {}", kind(self.value))))
    }

    pub fn f64(&self) -> Result<f64> {
        self.value
            .as_f64()
            .ok_or_else(|| self.error(format!("must be a number, found {}", kind(self.value))))
    }

    pub fn u64(&self) -> Result<u64> {
        self.value.as_u64().ok_or_else(|| {
            self.error(format!(
                "= {} must be a non-negative integer",
                short(self.value)
            ))
        })
    }

    /// An integer in `lo..=hi`.
    pub fn int_in(&self, lo: i64, hi: i64) -> Result<i64> {
        let v = match self.value.as_i64() {
            Some(v) => v,
            None => {
                return Err(self.error(format!(
                    "= {} must be an integer in {lo}..={hi}",
                    short(self.value)
                )));
            }
        };
        if v < lo || v > hi {
            return Err(self.error(format!("= {v} is outside {lo}..={hi}")));
        }
        Ok(v)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The value as JSON, cut short so an error about a huge array stays one line.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}...", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}
