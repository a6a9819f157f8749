//! Architecture descriptions: `--arch` strings and JSON files, compiled into the node list of a
//! graph network ([`NodeSpec`]), with shapes inferred and checked against the input.
//!
//! The vocabulary is the int-model's (DESIGN section 5) plus what folds into it: `batchnorm`
//! folds into the convolution or dense layer before it (as TFLite's converter does), `relu` and
//! `relu6` fuse into the op before them as its output clamp, `flatten` is a `reshape`, and
//! `res(BODY)` / `res(BODY;SHORTCUT)` is a residual block ending in an `add`.
//!
//! ```text
//! arch    := item (',' item)*
//! item    := layer | 'res(' arch [';' arch] ')'
//! layer   := conv2d:F:K[:sS][:dD][:same|valid]          F filters, K = 3 or 3x3 (same by default)
//!          | depthwise_conv2d:K[:mM][:sS][:dD][:same|valid]   M depth multiplier (1)
//!          | dense:N | max_pool2d:K[:sS][:same|valid] | avg_pool2d:K[:sS][:same|valid]
//!          | relu | relu6 | batchnorm | flatten       (pools: stride K, valid by default)
//! ```
//!
//! The MNIST MLP is `flatten,dense:128,relu,dense:64,relu,dense:10`; the shipped CNN is
//! `conv2d:16:3x3,batchnorm,relu,max_pool2d:2,conv2d:32:3x3,batchnorm,relu,max_pool2d:2,flatten,dense:10`
//! (see `models/cnn/README.md`). Every error names the layer (by position and text) and is one
//! line.

use crate::error::input;
use crate::model::Window;
use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// A fused activation: the op's output clamp in the int-model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    #[default]
    None,
    Relu,
    Relu6,
}

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Act::None => "none",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
        }
    }
}

/// Spatial padding as written: SAME (TFLite's rule, resolved against the input) or VALID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pad {
    Same,
    Valid,
    /// Resolved `[top, bottom, left, right]` (JSON files and imported models).
    Explicit([usize; 4]),
}

/// One layer of an architecture description.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerDesc {
    Conv2d {
        filters: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: Pad,
    },
    DepthwiseConv2d {
        multiplier: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: Pad,
    },
    Dense {
        units: usize,
    },
    MaxPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Pad,
    },
    AvgPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: Pad,
    },
    Relu,
    Relu6,
    BatchNorm,
    Flatten,
}

/// An item of an architecture: a layer, or a residual block `add(shortcut(x), body(x))`
/// (an empty shortcut is the identity).
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Layer(LayerDesc),
    Res {
        body: Vec<Item>,
        shortcut: Vec<Item>,
    },
}

/// A parsed architecture, not yet checked against an input shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Arch {
    pub items: Vec<Item>,
}

/// The op of one node of a graph network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OpSpec {
    Conv2d {
        filters: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: [usize; 4],
        batchnorm: bool,
    },
    DepthwiseConv2d {
        multiplier: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        padding: [usize; 4],
        batchnorm: bool,
    },
    Dense {
        units: usize,
        batchnorm: bool,
    },
    MaxPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
    },
    AvgPool2d {
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
    },
    Add,
    Reshape {
        shape: Vec<usize>,
    },
}

impl OpSpec {
    /// The int-model window of a convolution or pool.
    pub fn window(&self) -> Option<Window> {
        let (kernel, stride, dilation, padding) = match *self {
            OpSpec::Conv2d {
                kernel,
                stride,
                dilation,
                padding,
                ..
            }
            | OpSpec::DepthwiseConv2d {
                kernel,
                stride,
                dilation,
                padding,
                ..
            } => (kernel, stride, dilation, padding),
            OpSpec::MaxPool2d {
                kernel,
                stride,
                padding,
            }
            | OpSpec::AvgPool2d {
                kernel,
                stride,
                padding,
            } => (kernel, stride, [1, 1], padding),
            _ => return None,
        };
        Some(Window {
            kernel,
            stride,
            dilation,
            padding,
        })
    }

    /// Whether a batchnorm follows (and folds into) this op.
    pub fn batchnorm(&self) -> bool {
        matches!(
            self,
            OpSpec::Conv2d {
                batchnorm: true,
                ..
            } | OpSpec::DepthwiseConv2d {
                batchnorm: true,
                ..
            } | OpSpec::Dense {
                batchnorm: true,
                ..
            }
        )
    }

    /// Ops with weights (and a per-channel requantizer).
    pub fn accumulates(&self) -> bool {
        matches!(
            self,
            OpSpec::Conv2d { .. } | OpSpec::DepthwiseConv2d { .. } | OpSpec::Dense { .. }
        )
    }
}

/// One node of a graph network: its op, the tensors it reads (`"input"` or earlier nodes'
/// names), its fused activation and its output shape (per image: `[H, W, C]` or `[N]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub inputs: Vec<String>,
    pub op: OpSpec,
    pub act: Act,
    pub shape: Vec<usize>,
}

/// The name of the graph input in node lists.
pub const INPUT: &str = "input";

/// Largest kernel, stride or dilation (the int-model's window limit).
const MAX_DIM: usize = 1 << 16;

const LAYER_NAMES: &str = "conv2d, depthwise_conv2d, dense, max_pool2d, avg_pool2d, relu, relu6, batchnorm, flatten, res(...)";

impl Arch {
    /// `--arch` text: a description string, or a `.json` file holding one (see
    /// [`Arch::from_json`]).
    pub fn from_arg(arg: &str) -> Result<Arch> {
        if arg.trim_end().ends_with(".json") {
            let path = Path::new(arg.trim());
            let text = std::fs::read_to_string(path)
                .map_err(|e| input(format!("--arch {}: cannot read: {e}", path.display())))?;
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| input(format!("--arch {}: not valid JSON: {e}", path.display())))?;
            return Arch::from_json(&v)
                .map_err(|e| input(format!("--arch {}: {e}", path.display())));
        }
        Arch::parse(arg).map_err(|e| input(format!("--arch: {e}")))
    }

    /// Parses the string grammar of the module documentation.
    pub fn parse(s: &str) -> std::result::Result<Arch, String> {
        let mut counter = 0;
        let items = parse_items(s, &mut counter)?;
        if items.is_empty() {
            return Err("no layers given".into());
        }
        Ok(Arch { items })
    }

    /// A JSON architecture: `{"layers": [ITEM, ...]}` where an item is a string of the string
    /// grammar (`"conv2d:16:3x3"`, `"relu"`), or an object `{"kind": "conv2d", "filters": 16,
    /// "kernel": [3, 3], "stride": 1, "dilation": 1, "padding": "same"}` (`padding` may also be
    /// `[top, bottom, left, right]`), `{"kind": "dense", "units": 10}`, `{"kind":
    /// "depthwise_conv2d", "kernel": 3, "multiplier": 1}`, `{"kind": "max_pool2d", "kernel": 2}`,
    /// or `{"kind": "res", "body": [ITEM, ...], "shortcut": [ITEM, ...]}`.
    pub fn from_json(v: &Value) -> std::result::Result<Arch, String> {
        let layers = v
            .get("layers")
            .ok_or("no \"layers\" list at the top level")?;
        let mut counter = 0;
        let items = json_items(layers, "layers", &mut counter)?;
        if items.is_empty() {
            return Err("layers: no layers given".into());
        }
        Ok(Arch { items })
    }

    /// The nodes of this architecture over an input of `input_shape`, shapes checked.
    pub fn compile(&self, input_shape: &[usize]) -> std::result::Result<Vec<NodeSpec>, String> {
        let mut c = Compiler::default();
        let out = c.items(&self.items, Cur::input(input_shape))?;
        if out.shape.len() != 1 {
            return Err(format!(
                "the last layer gives a {:?} tensor: end with flatten and a dense layer (the logits)",
                out.shape
            ));
        }
        if !c.nodes.iter().any(|n| n.op.accumulates()) {
            return Err("no conv2d, depthwise_conv2d or dense layer: nothing to train".into());
        }
        Ok(c.nodes)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&items_text(&self.items))
    }
}

fn pair_text(p: [usize; 2]) -> String {
    format!("{}x{}", p[0], p[1])
}

fn pad_text(p: Pad) -> String {
    match p {
        Pad::Same => "same".into(),
        Pad::Valid => "valid".into(),
        Pad::Explicit(v) => format!("p{}-{}-{}-{}", v[0], v[1], v[2], v[3]),
    }
}

fn items_text(items: &[Item]) -> String {
    items
        .iter()
        .map(|it| match it {
            Item::Layer(l) => layer_text(l),
            Item::Res { body, shortcut } if shortcut.is_empty() => {
                format!("res({})", items_text(body))
            }
            Item::Res { body, shortcut } => {
                format!("res({};{})", items_text(body), items_text(shortcut))
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn layer_text(l: &LayerDesc) -> String {
    let window = |k: [usize; 2], s: [usize; 2], d: [usize; 2], p: Pad| {
        let mut t = pair_text(k);
        if s != [1, 1] {
            t += &format!(":s{}", pair_text(s));
        }
        if d != [1, 1] {
            t += &format!(":d{}", pair_text(d));
        }
        t + ":" + &pad_text(p)
    };
    match *l {
        LayerDesc::Conv2d {
            filters,
            kernel,
            stride,
            dilation,
            padding,
        } => format!(
            "conv2d:{filters}:{}",
            window(kernel, stride, dilation, padding)
        ),
        LayerDesc::DepthwiseConv2d {
            multiplier,
            kernel,
            stride,
            dilation,
            padding,
        } => format!(
            "depthwise_conv2d:{}:m{multiplier}",
            window(kernel, stride, dilation, padding)
        ),
        LayerDesc::Dense { units } => format!("dense:{units}"),
        LayerDesc::MaxPool2d {
            kernel,
            stride,
            padding,
        } => format!(
            "max_pool2d:{}:s{}:{}",
            pair_text(kernel),
            pair_text(stride),
            pad_text(padding)
        ),
        LayerDesc::AvgPool2d {
            kernel,
            stride,
            padding,
        } => format!(
            "avg_pool2d:{}:s{}:{}",
            pair_text(kernel),
            pair_text(stride),
            pad_text(padding)
        ),
        LayerDesc::Relu => "relu".into(),
        LayerDesc::Relu6 => "relu6".into(),
        LayerDesc::BatchNorm => "batchnorm".into(),
        LayerDesc::Flatten => "flatten".into(),
    }
}

/// Splits at top-level occurrences of `sep` (outside parentheses).
fn split_top(s: &str, sep: char) -> std::result::Result<Vec<&str>, String> {
    let mut depth = 0i32;
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("{s:?}: unbalanced ')'"));
                }
            }
            c if c == sep && depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("{s:?}: unbalanced '('"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_items(s: &str, counter: &mut usize) -> std::result::Result<Vec<Item>, String> {
    let mut items = Vec::new();
    for part in split_top(s, ',')? {
        let t = part.trim();
        *counter += 1;
        let at = *counter;
        if t.is_empty() {
            return Err(format!("layer {at}: empty (two commas in a row?)"));
        }
        if let Some(inner) = t.strip_prefix("res(") {
            let Some(inner) = inner.strip_suffix(')') else {
                return Err(format!(
                    "layer {at} {t:?}: a residual block is res(BODY) or res(BODY;SHORTCUT)"
                ));
            };
            let halves = split_top(inner, ';')?;
            if halves.len() > 2 {
                return Err(format!(
                    "layer {at} {t:?}: res takes a body and at most one shortcut (one ';')"
                ));
            }
            let body = parse_items(halves[0], counter)?;
            let shortcut = match halves.get(1) {
                Some(h) if !h.trim().is_empty() => parse_items(h, counter)?,
                _ => Vec::new(),
            };
            items.push(Item::Res { body, shortcut });
        } else {
            items.push(Item::Layer(
                parse_layer(t).map_err(|e| format!("layer {at} {t:?}: {e}"))?,
            ));
        }
    }
    Ok(items)
}

fn parse_pair(s: &str, what: &str) -> std::result::Result<[usize; 2], String> {
    let nums: Vec<&str> = s.split('x').collect();
    let parse = |t: &str| -> std::result::Result<usize, String> {
        match t.trim().parse::<usize>() {
            Ok(v) if v > 0 && v <= MAX_DIM => Ok(v),
            _ => Err(format!("{what} {s:?} is not a positive size like 3 or 3x3")),
        }
    };
    match nums[..] {
        [a] => {
            let v = parse(a)?;
            Ok([v, v])
        }
        [a, b] => Ok([parse(a)?, parse(b)?]),
        _ => Err(format!("{what} {s:?} is not a size like 3 or 3x3")),
    }
}

/// Options after the required fields: `sS`, `dD`, `mM`, `same`, `valid`.
struct Opts {
    stride: Option<[usize; 2]>,
    dilation: [usize; 2],
    multiplier: usize,
    padding: Option<Pad>,
}

fn parse_opts(opts: &[&str], allowed: &str) -> std::result::Result<Opts, String> {
    let mut o = Opts {
        stride: None,
        dilation: [1, 1],
        multiplier: 1,
        padding: None,
    };
    for &opt in opts {
        let opt = opt.trim();
        let first = opt.chars().next().unwrap_or(' ');
        match opt {
            "same" | "valid" => {
                o.padding = Some(if opt == "same" { Pad::Same } else { Pad::Valid });
            }
            _ if first == 's' && allowed.contains('s') => {
                o.stride = Some(parse_pair(&opt[1..], "stride")?)
            }
            _ if first == 'd' && allowed.contains('d') => {
                o.dilation = parse_pair(&opt[1..], "dilation")?
            }
            _ if first == 'm' && allowed.contains('m') => {
                o.multiplier = match opt[1..].parse::<usize>() {
                    Ok(m) if m > 0 => m,
                    _ => return Err(format!("depth multiplier {opt:?} is not mN with N >= 1")),
                }
            }
            _ => {
                return Err(format!(
                    "unknown option {opt:?} (options: {})",
                    allowed
                        .chars()
                        .map(|c| match c {
                            's' => "sS (stride)",
                            'd' => "dD (dilation)",
                            'm' => "mM (depth multiplier)",
                            _ => "same|valid",
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    }
    Ok(o)
}

fn positive(s: &str, what: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(v) if v > 0 && v <= crate::model::MAX_TENSOR_ELEMENTS => Ok(v),
        _ => Err(format!("{what} {s:?} is not a positive integer")),
    }
}

fn parse_layer(t: &str) -> std::result::Result<LayerDesc, String> {
    let parts: Vec<&str> = t.split(':').collect();
    let (name, args) = (parts[0].trim(), &parts[1..]);
    let no_args = |l: LayerDesc| {
        if args.is_empty() {
            Ok(l)
        } else {
            Err(format!("{name} takes no arguments"))
        }
    };
    match name {
        "conv2d" => {
            if args.len() < 2 {
                return Err("conv2d needs filters and a kernel: conv2d:16:3x3".into());
            }
            let o = parse_opts(&args[2..], "sdp")?;
            Ok(LayerDesc::Conv2d {
                filters: positive(args[0], "filters")?,
                kernel: parse_pair(args[1], "kernel")?,
                stride: o.stride.unwrap_or([1, 1]),
                dilation: o.dilation,
                padding: o.padding.unwrap_or(Pad::Same),
            })
        }
        "depthwise_conv2d" => {
            if args.is_empty() {
                return Err("depthwise_conv2d needs a kernel: depthwise_conv2d:3x3".into());
            }
            let o = parse_opts(&args[1..], "mdsp")?;
            Ok(LayerDesc::DepthwiseConv2d {
                multiplier: o.multiplier,
                kernel: parse_pair(args[0], "kernel")?,
                stride: o.stride.unwrap_or([1, 1]),
                dilation: o.dilation,
                padding: o.padding.unwrap_or(Pad::Same),
            })
        }
        "dense" => match args {
            [n] => Ok(LayerDesc::Dense {
                units: positive(n, "units")?,
            }),
            _ => Err("dense takes the number of units: dense:10".into()),
        },
        "max_pool2d" | "avg_pool2d" => {
            if args.is_empty() {
                return Err(format!("{name} needs a kernel: {name}:2"));
            }
            let kernel = parse_pair(args[0], "kernel")?;
            let o = parse_opts(&args[1..], "sp")?;
            let (stride, padding) = (o.stride.unwrap_or(kernel), o.padding.unwrap_or(Pad::Valid));
            Ok(if name == "max_pool2d" {
                LayerDesc::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                }
            } else {
                LayerDesc::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                }
            })
        }
        "relu" => no_args(LayerDesc::Relu),
        "relu6" => no_args(LayerDesc::Relu6),
        "batchnorm" | "bn" => no_args(LayerDesc::BatchNorm),
        "flatten" => no_args(LayerDesc::Flatten),
        _ => Err(format!("unknown layer {name:?} (known: {LAYER_NAMES})")),
    }
}

fn json_pair(
    v: Option<&Value>,
    what: &str,
    default: [usize; 2],
) -> std::result::Result<[usize; 2], String> {
    let Some(v) = v else { return Ok(default) };
    let get = |x: &Value| match x.as_u64() {
        Some(n) if n > 0 && n as usize <= MAX_DIM => Ok(n as usize),
        _ => Err(format!(
            "{what} = {v} is not a positive size or [size, size]"
        )),
    };
    match v {
        Value::Array(a) if a.len() == 2 => Ok([get(&a[0])?, get(&a[1])?]),
        Value::Array(_) => Err(format!("{what} = {v} must have two entries")),
        x => {
            let n = get(x)?;
            Ok([n, n])
        }
    }
}

fn json_pad(v: Option<&Value>, default: Pad) -> std::result::Result<Pad, String> {
    match v {
        None => Ok(default),
        Some(Value::String(s)) if s == "same" => Ok(Pad::Same),
        Some(Value::String(s)) if s == "valid" => Ok(Pad::Valid),
        Some(Value::Array(a)) if a.len() == 4 && a.iter().all(|x| x.as_u64().is_some()) => {
            let p: Vec<usize> = a.iter().map(|x| x.as_u64().unwrap_or(0) as usize).collect();
            Ok(Pad::Explicit([p[0], p[1], p[2], p[3]]))
        }
        Some(x) => Err(format!(
            "padding = {x} is not \"same\", \"valid\" or [top, bottom, left, right]"
        )),
    }
}

/// `r` with its error prefixed by the item's position.
fn prefixed<T>(here: &str, r: std::result::Result<T, String>) -> std::result::Result<T, String> {
    r.map_err(|m| format!("{here}: {m}"))
}

fn json_items(v: &Value, at: &str, counter: &mut usize) -> std::result::Result<Vec<Item>, String> {
    let Some(list) = v.as_array() else {
        return Err(format!("{at} is not a list"));
    };
    let mut items = Vec::new();
    for (i, it) in list.iter().enumerate() {
        let here = format!("{at}[{i}]");
        match it {
            Value::String(s) => {
                let mut parsed = parse_items(s, counter).map_err(|e| format!("{here}: {e}"))?;
                items.append(&mut parsed);
            }
            Value::Object(o) => {
                *counter += 1;
                let kind = o
                    .get("kind")
                    .and_then(Value::as_str)
                    .ok_or(format!("{here}: no \"kind\" string"))?;
                let num = |field: &str| -> std::result::Result<usize, String> {
                    match o.get(field).and_then(Value::as_u64) {
                        Some(n) if n > 0 => Ok(n as usize),
                        _ => Err(format!("{here}.{field}: a positive integer is required")),
                    }
                };
                let item = match kind {
                    "res" => Item::Res {
                        body: json_items(
                            o.get("body")
                                .ok_or(format!("{here}: res needs a \"body\" list"))?,
                            &format!("{here}.body"),
                            counter,
                        )?,
                        shortcut: match o.get("shortcut") {
                            Some(s) => json_items(s, &format!("{here}.shortcut"), counter)?,
                            None => Vec::new(),
                        },
                    },
                    "conv2d" => Item::Layer(LayerDesc::Conv2d {
                        filters: num("filters")?,
                        kernel: prefixed(&here, json_pair(o.get("kernel"), "kernel", [0, 0]))
                            .and_then(|k| {
                                if k == [0, 0] {
                                    Err(format!("{here}.kernel is required"))
                                } else {
                                    Ok(k)
                                }
                            })?,
                        stride: prefixed(&here, json_pair(o.get("stride"), "stride", [1, 1]))?,
                        dilation: prefixed(
                            &here,
                            json_pair(o.get("dilation"), "dilation", [1, 1]),
                        )?,
                        padding: prefixed(&here, json_pad(o.get("padding"), Pad::Same))?,
                    }),
                    "depthwise_conv2d" => Item::Layer(LayerDesc::DepthwiseConv2d {
                        multiplier: if o.contains_key("multiplier") {
                            num("multiplier")?
                        } else {
                            1
                        },
                        kernel: prefixed(&here, json_pair(o.get("kernel"), "kernel", [0, 0]))
                            .and_then(|k| {
                                if k == [0, 0] {
                                    Err(format!("{here}.kernel is required"))
                                } else {
                                    Ok(k)
                                }
                            })?,
                        stride: prefixed(&here, json_pair(o.get("stride"), "stride", [1, 1]))?,
                        dilation: prefixed(
                            &here,
                            json_pair(o.get("dilation"), "dilation", [1, 1]),
                        )?,
                        padding: prefixed(&here, json_pad(o.get("padding"), Pad::Same))?,
                    }),
                    "dense" => Item::Layer(LayerDesc::Dense {
                        units: num("units")?,
                    }),
                    "max_pool2d" | "avg_pool2d" => {
                        let kernel = prefixed(&here, json_pair(o.get("kernel"), "kernel", [0, 0]))
                            .and_then(|k| {
                                if k == [0, 0] {
                                    Err(format!("{here}.kernel is required"))
                                } else {
                                    Ok(k)
                                }
                            })?;
                        let stride = prefixed(&here, json_pair(o.get("stride"), "stride", kernel))?;
                        let padding = prefixed(&here, json_pad(o.get("padding"), Pad::Valid))?;
                        Item::Layer(if kind == "max_pool2d" {
                            LayerDesc::MaxPool2d {
                                kernel,
                                stride,
                                padding,
                            }
                        } else {
                            LayerDesc::AvgPool2d {
                                kernel,
                                stride,
                                padding,
                            }
                        })
                    }
                    "relu" | "relu6" | "batchnorm" | "flatten" => {
                        Item::Layer(parse_layer(kind).map_err(|m| format!("{here}: {m}"))?)
                    }
                    other => {
                        return Err(format!(
                            "{here}: unknown layer {other:?} (known: {LAYER_NAMES})"
                        ));
                    }
                };
                items.push(item);
            }
            other => return Err(format!("{here} = {other} is not a layer string or object")),
        }
    }
    Ok(items)
}

/// The tensor the compiler is at: its producer's name and shape.
#[derive(Clone, Debug)]
struct Cur {
    name: String,
    shape: Vec<usize>,
    /// The node that produced it, if it can still absorb a batchnorm or an activation.
    node: Option<usize>,
}

impl Cur {
    fn input(shape: &[usize]) -> Cur {
        Cur {
            name: INPUT.into(),
            shape: shape.to_vec(),
            node: None,
        }
    }
}

#[derive(Default)]
struct Compiler {
    nodes: Vec<NodeSpec>,
    counts: std::collections::HashMap<&'static str, usize>,
    layer: usize,
}

/// TFLite's SAME padding along one axis: output `ceil(n / s)`, the odd extra at the end.
fn same_pad(n: usize, k: usize, s: usize, d: usize) -> [usize; 2] {
    let out = n.div_ceil(s);
    let span = (k - 1) * d + 1;
    let total = ((out - 1) * s + span).saturating_sub(n);
    [total / 2, total - total / 2]
}

fn resolve(p: Pad, shape: &[usize], k: [usize; 2], s: [usize; 2], d: [usize; 2]) -> [usize; 4] {
    match p {
        Pad::Valid => [0; 4],
        Pad::Explicit(v) => v,
        Pad::Same => {
            let [t, b] = same_pad(shape[0], k[0], s[0], d[0]);
            let [l, r] = same_pad(shape[1], k[1], s[1], d[1]);
            [t, b, l, r]
        }
    }
}

impl Compiler {
    fn name(&mut self, prefix: &'static str) -> String {
        let n = self.counts.entry(prefix).or_insert(0);
        *n += 1;
        format!("{prefix}{n}")
    }

    fn push(
        &mut self,
        prefix: &'static str,
        inputs: Vec<String>,
        op: OpSpec,
        shape: Vec<usize>,
    ) -> Cur {
        let name = self.name(prefix);
        self.nodes.push(NodeSpec {
            name: name.clone(),
            inputs,
            op,
            act: Act::None,
            shape: shape.clone(),
        });
        Cur {
            name,
            shape,
            node: Some(self.nodes.len() - 1),
        }
    }

    fn items(&mut self, items: &[Item], mut cur: Cur) -> std::result::Result<Cur, String> {
        for it in items {
            self.layer += 1;
            let at = self.layer;
            cur = match it {
                Item::Layer(l) => self
                    .layer(l, cur)
                    .map_err(|e| format!("layer {at} {:?}: {e}", layer_text(l)))?,
                Item::Res { body, shortcut } => {
                    if body.is_empty() {
                        return Err(format!("layer {at} res(...): the body is empty"));
                    }
                    let start = Cur { node: None, ..cur };
                    let b = self.items(body, start.clone())?;
                    let s = if shortcut.is_empty() {
                        start
                    } else {
                        self.items(shortcut, start)?
                    };
                    if b.shape != s.shape {
                        return Err(format!(
                            "layer {at} res(...): the body gives a {:?} tensor but the shortcut a {:?} one (they are added)",
                            b.shape, s.shape
                        ));
                    }
                    if b.name == s.name {
                        return Err(format!("layer {at} res(...): the body computes nothing"));
                    }
                    self.push("add", vec![s.name, b.name], OpSpec::Add, b.shape)
                }
            };
        }
        Ok(cur)
    }

    fn spatial(shape: &[usize], what: &str) -> std::result::Result<(usize, usize, usize), String> {
        match *shape {
            [h, w, c] => Ok((h, w, c)),
            _ => Err(format!(
                "{what} needs an [H, W, C] input but gets a {shape:?} tensor"
            )),
        }
    }

    fn out_shape(
        shape: &[usize],
        win: Window,
        c: usize,
    ) -> std::result::Result<Vec<usize>, String> {
        let (oh, ow) = win.out_hw(shape[0], shape[1])?;
        Ok(vec![oh, ow, c])
    }

    fn layer(&mut self, l: &LayerDesc, cur: Cur) -> std::result::Result<Cur, String> {
        match *l {
            LayerDesc::Conv2d {
                filters,
                kernel,
                stride,
                dilation,
                padding,
            } => {
                Self::spatial(&cur.shape, "conv2d")?;
                let padding = resolve(padding, &cur.shape, kernel, stride, dilation);
                let win = Window {
                    kernel,
                    stride,
                    dilation,
                    padding,
                };
                let shape = Self::out_shape(&cur.shape, win, filters)?;
                let op = OpSpec::Conv2d {
                    filters,
                    kernel,
                    stride,
                    dilation,
                    padding,
                    batchnorm: false,
                };
                Ok(self.push("conv", vec![cur.name], op, shape))
            }
            LayerDesc::DepthwiseConv2d {
                multiplier,
                kernel,
                stride,
                dilation,
                padding,
            } => {
                let (_, _, c) = Self::spatial(&cur.shape, "depthwise_conv2d")?;
                let padding = resolve(padding, &cur.shape, kernel, stride, dilation);
                let win = Window {
                    kernel,
                    stride,
                    dilation,
                    padding,
                };
                let shape = Self::out_shape(&cur.shape, win, c * multiplier)?;
                let op = OpSpec::DepthwiseConv2d {
                    multiplier,
                    kernel,
                    stride,
                    dilation,
                    padding,
                    batchnorm: false,
                };
                Ok(self.push("dwconv", vec![cur.name], op, shape))
            }
            LayerDesc::Dense { units } => {
                if cur.shape.len() != 1 {
                    return Err(format!(
                        "dense needs a flat input but gets a {:?} tensor: add flatten before it",
                        cur.shape
                    ));
                }
                Ok(self.push(
                    "fc",
                    vec![cur.name],
                    OpSpec::Dense {
                        units,
                        batchnorm: false,
                    },
                    vec![units],
                ))
            }
            LayerDesc::MaxPool2d {
                kernel,
                stride,
                padding,
            }
            | LayerDesc::AvgPool2d {
                kernel,
                stride,
                padding,
            } => {
                let max = matches!(l, LayerDesc::MaxPool2d { .. });
                let (h, w, c) =
                    Self::spatial(&cur.shape, if max { "max_pool2d" } else { "avg_pool2d" })?;
                let padding = resolve(padding, &cur.shape, kernel, stride, [1, 1]);
                let win = Window {
                    kernel,
                    stride,
                    dilation: [1, 1],
                    padding,
                };
                let shape = Self::out_shape(&cur.shape, win, c)?;
                win.check_every_window_valid(h, w)?;
                let op = if max {
                    OpSpec::MaxPool2d {
                        kernel,
                        stride,
                        padding,
                    }
                } else {
                    OpSpec::AvgPool2d {
                        kernel,
                        stride,
                        padding,
                    }
                };
                Ok(self.push(
                    if max { "maxpool" } else { "avgpool" },
                    vec![cur.name],
                    op,
                    shape,
                ))
            }
            LayerDesc::Flatten => {
                if cur.shape.len() == 1 {
                    return Err(format!("the input is already flat ({:?})", cur.shape));
                }
                let n = cur.shape.iter().product();
                Ok(self.push(
                    "flatten",
                    vec![cur.name],
                    OpSpec::Reshape { shape: vec![n] },
                    vec![n],
                ))
            }
            LayerDesc::BatchNorm => {
                let node = cur.node.map(|i| &mut self.nodes[i]);
                match node {
                    Some(NodeSpec { op: OpSpec::Conv2d { batchnorm, .. } | OpSpec::DepthwiseConv2d { batchnorm, .. } | OpSpec::Dense { batchnorm, .. }, act: Act::None, .. }) if !*batchnorm => {
                        *batchnorm = true;
                        Ok(cur)
                    }
                    _ => Err("batchnorm must directly follow a conv2d, depthwise_conv2d or dense layer (it folds into it)".into()),
                }
            }
            LayerDesc::Relu | LayerDesc::Relu6 => {
                let act = if *l == LayerDesc::Relu {
                    Act::Relu
                } else {
                    Act::Relu6
                };
                match cur.node.map(|i| &mut self.nodes[i]) {
                    Some(n) if n.act == Act::None && !matches!(n.op, OpSpec::Reshape { .. }) => {
                        n.act = act;
                        Ok(cur)
                    }
                    Some(n) if n.act != Act::None => Err(format!(
                        "{} already ends in {}: one activation per layer",
                        n.name,
                        n.act.as_str()
                    )),
                    _ => Err(format!(
                        "an activation fuses into the op before it, and {} has none that can carry it (put it before flatten, after a layer)",
                        cur.name
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CNN: &str = "conv2d:16:3x3,batchnorm,relu,max_pool2d:2,conv2d:32:3x3,batchnorm,relu,max_pool2d:2,flatten,dense:10";

    #[test]
    fn compiles_the_cnn_and_the_mlp() {
        let nodes = Arch::parse(CNN).unwrap().compile(&[28, 28, 1]).unwrap();
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["conv1", "maxpool1", "conv2", "maxpool2", "flatten1", "fc1"]
        );
        assert_eq!(nodes[0].shape, [28, 28, 16]);
        assert_eq!(nodes[0].act, Act::Relu);
        assert!(nodes[0].op.batchnorm());
        assert_eq!(nodes[0].op.window().unwrap().padding, [1, 1, 1, 1]);
        assert_eq!(nodes[3].shape, [7, 7, 32]);
        assert_eq!(nodes[4].shape, [1568]);
        assert_eq!(nodes[5].inputs, ["flatten1"]);
        let mlp = Arch::parse("flatten,dense:128,relu,dense:64,relu,dense:10")
            .unwrap()
            .compile(&[28, 28, 1])
            .unwrap();
        assert_eq!(mlp.len(), 4);
        assert_eq!(mlp[1].name, "fc1");
        assert_eq!(mlp[3].act, Act::None);
        // The canonical text parses back to the same architecture.
        let a = Arch::parse(CNN).unwrap();
        assert_eq!(Arch::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn residual_blocks_and_same_padding() {
        let a = Arch::parse(
            "conv2d:8:3x3:s2,relu,res(conv2d:8:3x3,relu,conv2d:8:3x3),relu,res(conv2d:16:3x3:s2,relu,conv2d:16:3x3;conv2d:16:1x1:s2),avg_pool2d:4,flatten,dense:10",
        )
        .unwrap();
        let nodes = a.compile(&[28, 28, 1]).unwrap();
        // SAME at stride 2 on 28 rows: 14 outputs, total padding 1, at the bottom.
        assert_eq!(nodes[0].op.window().unwrap().padding, [0, 1, 0, 1]);
        let add1 = nodes.iter().find(|n| n.name == "add1").unwrap();
        assert_eq!(add1.inputs, ["conv1", "conv3"]);
        assert_eq!(add1.act, Act::Relu);
        let add2 = nodes.iter().find(|n| n.name == "add2").unwrap();
        assert_eq!(add2.inputs, ["conv6", "conv5"]);
        assert_eq!(add2.shape, [7, 7, 16]);
        assert_eq!(Arch::parse(&a.to_string()).unwrap(), a);
    }

    #[test]
    fn json_form_equals_the_string_form() {
        let v: Value = serde_json::from_str(
            r#"{"layers": [
                {"kind": "conv2d", "filters": 16, "kernel": [3, 3], "padding": "same"},
                "batchnorm", "relu", {"kind": "max_pool2d", "kernel": 2},
                {"kind": "conv2d", "filters": 32, "kernel": 3}, "batchnorm,relu",
                "max_pool2d:2", {"kind": "flatten"}, {"kind": "dense", "units": 10}]}"#,
        )
        .unwrap();
        assert_eq!(Arch::from_json(&v).unwrap(), Arch::parse(CNN).unwrap());
        let r: Value = serde_json::from_str(
            r#"{"layers": [{"kind": "res", "body": ["conv2d:1:3x3"]}, "flatten", "dense:2"]}"#,
        )
        .unwrap();
        assert_eq!(
            Arch::from_json(&r).unwrap(),
            Arch::parse("res(conv2d:1:3x3),flatten,dense:2").unwrap()
        );
    }

    /// Every kind of bad description gives one line naming the layer.
    #[test]
    fn bad_descriptions_name_the_layer() {
        for (arch, want) in [
            (
                "conv3d:16:3x3,flatten,dense:10",
                "layer 1 \"conv3d:16:3x3\": unknown layer \"conv3d\"",
            ),
            (
                "conv2d:16,flatten,dense:10",
                "conv2d needs filters and a kernel",
            ),
            ("conv2d:16:3x3:q2,flatten,dense:10", "unknown option \"q2\""),
            ("dense:10,conv2d:4:3x3", "dense needs a flat input"),
            (
                "flatten,dense:10,conv2d:4:3x3",
                "conv2d needs an [H, W, C] input but gets a [10] tensor",
            ),
            ("conv2d:4:3x3", "end with flatten and a dense layer"),
            (
                "conv2d:4:29x29:valid,flatten,dense:10",
                "kernel: the window spans 29 rows",
            ),
            (
                "relu,flatten,dense:10",
                "an activation fuses into the op before it",
            ),
            (
                "conv2d:4:3,relu,relu,flatten,dense:2",
                "already ends in relu",
            ),
            (
                "conv2d:4:3,relu,batchnorm,flatten,dense:2",
                "batchnorm must directly follow",
            ),
            (
                "res(conv2d:8:3x3),flatten,dense:2",
                "the body gives a [28, 28, 8] tensor but the shortcut a [28, 28, 1] one",
            ),
            ("res(conv2d:1:3x3,flatten,dense:2", "unbalanced '('"),
            (
                "conv2d:0:3x3,flatten,dense:2",
                "filters \"0\" is not a positive integer",
            ),
            ("flatten,,dense:2", "layer 2: empty"),
            ("", "layer 1: empty"),
        ] {
            let e = Arch::parse(arch)
                .and_then(|a| a.compile(&[28, 28, 1]))
                .unwrap_err();
            assert!(e.contains(want), "{arch}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = Arch::from_arg("/nonexistent/arch.json").unwrap_err();
        assert_eq!(crate::error::exit_code(&e), 2);
        let e = Arch::from_json(&serde_json::json!({"layers": [{"kind": "conv9"}]})).unwrap_err();
        assert!(e.contains("layers[0]: unknown layer \"conv9\""), "{e}");
    }
}
