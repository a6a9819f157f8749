//! The TFLite reader on the three MLPerf Tiny models (`models/tiny/`), on mutated copies of
//! them (a proptest mutator: truncation, byte flips, u32 overwrites, splices), and on the
//! committed crash corpus (`tests/fixtures/tflite-corpus/`).
//!
//! The mutator runs a bounded number of cases (`RATFLOW_TFLITE_FUZZ_CASES`, default 20,000
//! per model, 60,000 in all; about 3 s in release on two busy cores). A case passes when
//! `read` returns without panicking, an error is one line, and a successful read satisfies
//! the reader's documented invariants. The reader itself must not panic; the harness only
//! records a panicking input (`target/tflite-fuzz-crash-*.tflite`) before failing, so that it
//! can join the corpus.

use proptest::prelude::*;
use ratflow::import::tflite::{
    self, Activation, DType, OpKind, Padding, ReadError, TensorData, TfliteGraph,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const MODELS: [&str; 3] = [
    "ad01_int8.tflite",
    "kws_ref_model.tflite",
    "pretrainedResnet_quant.tflite",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_bytes() -> &'static [Vec<u8>; 3] {
    static BYTES: OnceLock<[Vec<u8>; 3]> = OnceLock::new();
    BYTES.get_or_init(|| {
        MODELS.map(|m| std::fs::read(root().join("models/tiny").join(m)).expect("model file"))
    })
}

fn read_model(name: &str) -> TfliteGraph {
    tflite::read_file(&root().join("models/tiny").join(name)).expect("reads")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ------------------------------------------------------------------ real models

/// The SHA-256 sums listed in `models/tiny/README.md` are those of the committed files.
#[test]
fn model_files_match_their_readme_checksums() {
    let readme = std::fs::read_to_string(root().join("models/tiny/README.md")).unwrap();
    for (name, bytes) in MODELS.iter().zip(model_bytes()) {
        let line = format!("{}  {name}", sha256_hex(bytes));
        assert!(readme.contains(&line), "README lacks `{line}`");
    }
}

fn kinds(g: &TfliteGraph) -> Vec<&str> {
    g.operators.iter().map(|o| o.name()).collect()
}

fn scale_zp(g: &TfliteGraph, t: usize) -> (f32, i64) {
    let q = g.tensors[t].quantization.as_ref().expect("quantized");
    assert!(q.is_per_tensor(), "tensor {t} per tensor");
    (q.scale[0], q.zero_point[0])
}

/// Invariants every op of the int8 models satisfies: int8 activations with one (S, Z),
/// int8 symmetric weights (per channel along the output axis for convolutions), int32 bias
/// with zero points 0 and one scale per output channel, topological order.
fn check_int8_graph(g: &TfliteGraph) {
    let mut known: Vec<bool> = g.tensors.iter().map(|t| t.data.is_some()).collect();
    for &i in &g.inputs {
        known[i] = true;
    }
    for op in &g.operators {
        for i in op.inputs.iter().flatten() {
            assert!(
                known[*i],
                "op {} reads tensor {i} before it is written",
                op.index
            );
        }
        for &o in &op.outputs {
            let t = &g.tensors[o];
            assert_eq!(t.dtype, DType::Int8);
            assert!(t.data.is_none());
            scale_zp(g, o);
            known[o] = true;
        }
        let weight_axis = match op.kind {
            OpKind::Conv2d(_) | OpKind::FullyConnected(_) => Some(0),
            OpKind::DepthwiseConv2d(_) => Some(3),
            _ => None,
        };
        if let Some(axis) = weight_axis {
            let w = &g.tensors[op.inputs[1].unwrap()];
            let b = &g.tensors[op.inputs[2].unwrap()];
            assert_eq!(w.dtype, DType::Int8);
            assert_eq!(b.dtype, DType::Int32);
            let TensorData::Int8(wd) = w.data.as_ref().unwrap() else {
                panic!("int8 weights")
            };
            assert_eq!(wd.len(), w.element_count());
            let TensorData::Int32(bd) = b.data.as_ref().unwrap() else {
                panic!("int32 bias")
            };
            let channels = w.shape[axis];
            assert_eq!(bd.len(), channels);
            let wq = w.quantization.as_ref().unwrap();
            assert!(wq.zero_point.iter().all(|&z| z == 0), "symmetric weights");
            assert!(wq.scale.len() == 1 || wq.scale.len() == channels);
            if wq.scale.len() > 1 {
                assert_eq!(wq.quantized_dimension, axis);
            }
            let bq = b.quantization.as_ref().unwrap();
            assert!(bq.zero_point.iter().all(|&z| z == 0));
            assert_eq!(bq.scale.len(), wq.scale.len());
            // TFLite's bias scale is S_x * S_w[c] (float32 product).
            let sx = scale_zp(g, op.inputs[0].unwrap()).0;
            for (sb, sw) in bq.scale.iter().zip(&wq.scale) {
                let want = sx * sw;
                assert!(
                    (sb - want).abs() <= want * 1e-6,
                    "bias scale {sb} vs {want}"
                );
            }
        }
    }
    for &o in &g.outputs {
        assert!(known[o]);
    }
}

#[test]
fn ad01_autoencoder() {
    let g = read_model("ad01_int8.tflite");
    assert_eq!(g.schema_version, 3);
    assert_eq!(g.description.as_deref(), Some("MLIR Converted."));
    assert_eq!(kinds(&g), vec!["FULLY_CONNECTED"; 10]);
    let relus = g
        .operators
        .iter()
        .map(|o| match &o.kind {
            OpKind::FullyConnected(fc) => {
                assert!(!fc.keep_num_dims);
                fc.activation == Activation::Relu
            }
            _ => unreachable!(),
        })
        .collect::<Vec<_>>();
    assert_eq!(relus, [vec![true; 9], vec![false]].concat());
    assert_eq!(g.inputs, vec![0]);
    assert_eq!(g.outputs, vec![30]);
    assert_eq!(g.tensors[0].shape, vec![1, 640]);
    assert_eq!(g.tensors[30].shape, vec![1, 640]);
    let (s, z) = scale_zp(&g, 0);
    assert!((s - 0.3910).abs() < 5e-5, "{s}");
    assert_eq!(z, 89);
    // 640 -> 128 x 4 -> 8 -> 128 x 4 -> 640.
    let widths: Vec<usize> = g
        .operators
        .iter()
        .map(|o| g.tensors[o.outputs[0]].shape[1])
        .collect();
    assert_eq!(widths, vec![128, 128, 128, 128, 8, 128, 128, 128, 128, 640]);
    // Dense weights per tensor, [O][N].
    let w0 = &g.tensors[g.operators[0].inputs[1].unwrap()];
    assert_eq!(w0.shape, vec![128, 640]);
    assert!(w0.quantization.as_ref().unwrap().is_per_tensor());
    check_int8_graph(&g);
}

#[test]
fn kws_ds_cnn() {
    let g = read_model("kws_ref_model.tflite");
    let mut want = vec!["CONV_2D"];
    for _ in 0..4 {
        want.extend(["DEPTHWISE_CONV_2D", "CONV_2D"]);
    }
    want.extend(["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]);
    assert_eq!(kinds(&g), want);
    let input = &g.tensors[g.inputs[0]];
    assert_eq!(input.shape, vec![1, 49, 10, 1]);
    assert_eq!(input.dtype, DType::Int8);
    let (s, z) = scale_zp(&g, g.inputs[0]);
    assert!((s - 0.5847).abs() < 5e-5, "{s}");
    assert_eq!(z, 83);
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 12]);
    // First conv: 10x4 kernel, stride 2, SAME, ReLU, 64 per-channel scales.
    let OpKind::Conv2d(c) = &g.operators[0].kind else {
        panic!()
    };
    assert_eq!((c.stride_w, c.stride_h), (2, 2));
    assert_eq!(c.padding, Padding::Same);
    assert_eq!(c.activation, Activation::Relu);
    let w = &g.tensors[g.operators[0].inputs[1].unwrap()];
    assert_eq!(w.shape, vec![64, 10, 4, 1]);
    assert_eq!(w.quantization.as_ref().unwrap().scale.len(), 64);
    assert_eq!(
        g.tensors[g.operators[0].outputs[0]].shape,
        vec![1, 25, 5, 64]
    );
    // Depthwise: [1, 3, 3, 64], quantized along axis 3, multiplier 1.
    let OpKind::DepthwiseConv2d(d) = &g.operators[1].kind else {
        panic!()
    };
    assert_eq!(d.depth_multiplier, 1);
    assert_eq!(
        (d.stride_w, d.stride_h, d.dilation_w, d.dilation_h),
        (1, 1, 1, 1)
    );
    let dw = &g.tensors[g.operators[1].inputs[1].unwrap()];
    assert_eq!(dw.shape, vec![1, 3, 3, 64]);
    assert_eq!(dw.quantization.as_ref().unwrap().quantized_dimension, 3);
    // Average pool over the whole 25x5 map, VALID.
    let OpKind::AveragePool2d(p) = &g.operators[9].kind else {
        panic!()
    };
    assert_eq!(
        (p.filter_h, p.filter_w, p.stride_h, p.stride_w),
        (25, 5, 25, 5)
    );
    assert_eq!(p.padding, Padding::Valid);
    // Pool output keeps its input's (S, Z).
    assert_eq!(
        scale_zp(&g, g.operators[9].inputs[0].unwrap()),
        scale_zp(&g, g.operators[9].outputs[0])
    );
    // RESHAPE takes its shape from a constant int32 input [-1, 64].
    let reshape = &g.operators[10];
    let shape_t = &g.tensors[reshape.inputs[1].unwrap()];
    assert_eq!(shape_t.data, Some(TensorData::Int32(vec![-1, 64])));
    // SOFTMAX output: S = 1/256, Z = -128.
    assert_eq!(scale_zp(&g, g.outputs[0]), (1.0 / 256.0, -128));
    check_int8_graph(&g);
}

#[test]
fn resnet8() {
    let g = read_model("pretrainedResnet_quant.tflite");
    let k = kinds(&g);
    let count = |n: &str| k.iter().filter(|&&x| x == n).count();
    assert_eq!(count("CONV_2D"), 9);
    assert_eq!(count("ADD"), 3);
    assert_eq!(
        k[12..].to_vec(),
        vec!["AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
    );
    assert_eq!(g.operators.len(), 16);
    let input = &g.tensors[g.inputs[0]];
    assert_eq!(input.shape, vec![1, 32, 32, 3]);
    assert_eq!(scale_zp(&g, g.inputs[0]), (1.0, -128));
    assert_eq!(g.tensors[g.outputs[0]].shape, vec![1, 10]);
    // Every ADD: two int8 inputs of equal shape with different scales, fused ReLU.
    for op in g.operators.iter().filter(|o| o.name() == "ADD") {
        let OpKind::Add(a) = &op.kind else { panic!() };
        assert_eq!(a.activation, Activation::Relu);
        let (x, y) = (op.inputs[0].unwrap(), op.inputs[1].unwrap());
        assert_eq!(g.tensors[x].shape, g.tensors[y].shape);
        assert_ne!(scale_zp(&g, x).0, scale_zp(&g, y).0);
    }
    // Stride-2 convolutions halve the map: 32 -> 16 -> 8.
    let strided: Vec<usize> = g
        .operators
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::Conv2d(c) if c.stride_w == 2 => Some(g.tensors[o.outputs[0]].shape[1]),
            _ => None,
        })
        .collect();
    assert_eq!(strided, vec![16, 16, 8, 8]);
    check_int8_graph(&g);
}

/// Every converter-written model in the repository (the op models of `tests/fixtures/tflite/`,
/// TF 2.21's converter, and `models/*.tflite`) reads, satisfies the reader's invariants, and
/// shows the variants it was made for.
#[test]
fn every_converter_model_in_the_repository() {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in ["tests/fixtures/tflite", "models", "models/tiny"] {
        let Ok(entries) = std::fs::read_dir(root().join(dir)) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "tflite") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 29, "{files:?}");
    let mut by_name = std::collections::BTreeMap::new();
    for p in &files {
        let g = tflite::read_file(p).unwrap_or_else(|e| panic!("{e}"));
        check_invariants(&g);
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        by_name.insert(stem, g);
    }
    // The op models of tests/fixtures/tflite (see its README).
    {
        let g = &by_name["float_io"];
        let k = kinds(g);
        assert_eq!(k.first(), Some(&"QUANTIZE"), "{k:?}");
        assert_eq!(k.last(), Some(&"DEQUANTIZE"), "{k:?}");
        assert_eq!(g.tensors[g.inputs[0]].dtype, DType::Float32);
    }
    {
        let g = &by_name["fc_no_bias"];
        let fc = g
            .operators
            .iter()
            .find(|o| o.name() == "FULLY_CONNECTED")
            .unwrap();
        assert_eq!(fc.inputs.len(), 3);
        assert_eq!(fc.inputs[2], None, "absent bias is -1");
    }
    {
        let g = &by_name["dw_dm2_s2_same"];
        let dw = &g.operators[0];
        let OpKind::DepthwiseConv2d(o) = &dw.kind else {
            panic!("{:?}", dw.kind)
        };
        assert_eq!((o.stride_w, o.stride_h, o.padding), (2, 2, Padding::Same));
        let cin = *g.tensors[dw.inputs[0].unwrap()].shape.last().unwrap();
        let cout = *g.tensors[dw.outputs[0]].shape.last().unwrap();
        assert_eq!(cout, 2 * cin, "depth multiplier 2 from the shapes");
    }
    {
        let g = &by_name["conv_dilation2_relu"];
        let OpKind::Conv2d(o) = &g.operators[0].kind else {
            panic!()
        };
        assert_eq!((o.dilation_w, o.dilation_h), (2, 2));
        assert_eq!(o.activation, Activation::Relu);
    }
    {
        let g = &by_name["fc_per_channel"];
        let fc = g
            .operators
            .iter()
            .find(|o| o.name() == "FULLY_CONNECTED")
            .unwrap();
        let q = g.tensors[fc.inputs[1].unwrap()]
            .quantization
            .clone()
            .unwrap();
        assert_eq!(q.scale.len(), 13);
        assert_eq!(q.quantized_dimension, 0);
    }
}

#[test]
fn missing_file_names_the_path() {
    let e = tflite::read_file(Path::new("no/such/model.tflite")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot read TFLite model no/such/model.tflite: "),
        "{e}"
    );
    assert_eq!(ratflow::error::exit_code(&e), 2);
}

#[test]
fn bad_file_error_names_the_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cut.tflite");
    std::fs::write(&p, &model_bytes()[1][..1000]).unwrap();
    let e = tflite::read_file(&p).unwrap_err();
    let line = e.to_string();
    assert!(
        line.starts_with(&format!(
            "{}: corrupt or truncated flatbuffer (1000 bytes): ",
            p.display()
        )),
        "{line}"
    );
    assert_eq!(ratflow::error::exit_code(&e), 2);
}

// ------------------------------------------------------------------ mutation fuzzing

/// What every successful read promises (see `reader.rs`): indices in range, data lengths equal
/// to the shapes, quantization arrays consistent.
fn check_invariants(g: &TfliteGraph) {
    let n = g.tensors.len();
    for (i, t) in g.tensors.iter().enumerate() {
        assert_eq!(t.index, i);
        assert!(t.shape.len() <= tflite::MAX_RANK);
        let count = t
            .shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
            .expect("no overflow");
        assert!(count <= tflite::MAX_ELEMENTS);
        if let Some(d) = &t.data {
            let len = match d {
                TensorData::Int8(v) => v.len(),
                TensorData::Uint8(v) => v.len(),
                TensorData::Int16(v) => v.len(),
                TensorData::Int32(v) => v.len(),
                TensorData::Int64(v) => v.len(),
                TensorData::Float32(v) => v.len(),
                TensorData::Raw(v) => {
                    let bits = t.dtype.bits().expect("sized type");
                    assert_eq!(v.len() as u64, (count * bits).div_ceil(8));
                    count as usize
                }
            };
            assert_eq!(len as u64, count);
        }
        if let Some(q) = &t.quantization {
            assert!(!q.scale.is_empty());
            assert_eq!(q.scale.len(), q.zero_point.len());
            assert!(q.scale.iter().all(|s| s.is_finite() && *s >= 0.0));
            if q.scale.len() > 1 {
                assert_eq!(q.scale.len(), t.shape[q.quantized_dimension]);
            }
        }
    }
    for (i, op) in g.operators.iter().enumerate() {
        assert_eq!(op.index, i);
        assert!(op.inputs.iter().flatten().all(|&t| t < n));
        assert!(op.outputs.iter().all(|&t| t < n));
        assert!(!op.name().is_empty());
    }
    assert!(g.inputs.iter().chain(&g.outputs).all(|&t| t < n));
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Keep the first `frac` of the file (0..=1, in 1/65536ths).
    Truncate(u32),
    /// XOR one byte at `pos` (within `region`, see `place`) with a non-zero mask.
    Flip { pos: u32, region: Region, mask: u8 },
    /// Overwrite a 4-byte-aligned little-endian u32 (flatbuffer offsets, lengths, indices and
    /// int32 fields are all 4 bytes) with an interesting or random value.
    U32 {
        pos: u32,
        region: Region,
        value: U32Value,
    },
    /// Copy `len` bytes from another model at `from` over this one at `to`.
    Splice {
        other: usize,
        from: u32,
        to: u32,
        len: u16,
    },
}

/// Where in the file a mutation lands. The converter writes constant data first, so it
/// fills the middle of the file; the root table sits in the first bytes and the subgraph's
/// tables, names and quantization arrays in the last tens of KiB. Most mutations target those,
/// so that they break structure rather than weights.
#[derive(Debug, Clone, Copy)]
enum Region {
    Anywhere,
    /// The first 4 KiB.
    Head,
    /// The last 32 KiB.
    Tail,
}

#[derive(Debug, Clone)]
enum U32Value {
    Fixed(u32),
    FileLen(i8),
    Random(u32),
}

fn region() -> impl Strategy<Value = Region> {
    prop_oneof![
        1 => Just(Region::Anywhere),
        1 => Just(Region::Head),
        3 => Just(Region::Tail),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let value = prop_oneof![
        prop::sample::select(vec![
            0u32,
            1,
            2,
            3,
            4,
            8,
            16,
            127,
            128,
            255,
            256,
            0x7fff,
            0xffff,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_fffe,
            0xffff_ffff,
        ])
        .prop_map(U32Value::Fixed),
        (-8i8..8).prop_map(U32Value::FileLen),
        any::<u32>().prop_map(U32Value::Random),
    ];
    prop_oneof![
        1 => any::<u32>().prop_map(|f| Mutation::Truncate(f % 65537)),
        3 => (any::<u32>(), region(), 1u8..=255)
            .prop_map(|(pos, region, mask)| Mutation::Flip { pos, region, mask }),
        4 => (any::<u32>(), region(), value)
            .prop_map(|(pos, region, value)| Mutation::U32 { pos, region, value }),
        1 => (0usize..3, any::<u32>(), any::<u32>(), 1u16..512)
            .prop_map(|(other, from, to, len)| Mutation::Splice { other, from, to, len }),
    ]
}

/// A position in `region` of a file of `len` (> 0) bytes.
fn place(pos: u32, region: Region, len: usize) -> usize {
    let pos = pos as usize;
    match region {
        Region::Anywhere => pos % len,
        Region::Head => pos % len.min(4096),
        Region::Tail => {
            let span = len.min(32 * 1024);
            len - span + pos % span
        }
    }
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match m {
        Mutation::Truncate(frac) => {
            let keep = (len as u64 * *frac as u64 / 65536) as usize;
            bytes.truncate(keep);
        }
        Mutation::Flip { pos, region, mask } => bytes[place(*pos, *region, len)] ^= mask,
        Mutation::U32 { pos, region, value } => {
            if len < 4 {
                return;
            }
            let at = place(*pos, *region, len - 3) & !3;
            let v = match value {
                U32Value::Fixed(v) | U32Value::Random(v) => *v,
                U32Value::FileLen(d) => (len as i64 + *d as i64) as u32,
            };
            bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        Mutation::Splice {
            other,
            from,
            to,
            len: n,
        } => {
            let src = &model_bytes()[*other];
            let from = *from as usize % src.len();
            let to = place(*to, Region::Tail, len);
            let n = (*n as usize).min(src.len() - from).min(len - to);
            bytes[to..to + n].copy_from_slice(&src[from..from + n]);
        }
    }
}

/// Reads `bytes`; on a panic, saves the input under `target/` for the crash corpus and
/// re-raises it (the test fails either way: this only records, it does not recover).
fn read_recording_crashes(bytes: &[u8]) -> Result<TfliteGraph, ReadError> {
    match std::panic::catch_unwind(|| tflite::read(bytes)) {
        Ok(r) => r,
        Err(panic) => {
            let path = root().join(format!(
                "target/tflite-fuzz-crash-{}.tflite",
                &sha256_hex(bytes)[..16]
            ));
            let _ = std::fs::write(&path, bytes);
            eprintln!("reader panicked; input saved to {}", path.display());
            std::panic::resume_unwind(panic)
        }
    }
}

fn check_one(bytes: &[u8]) -> Result<(), TestCaseError> {
    match read_recording_crashes(bytes) {
        Ok(g) => check_invariants(&g),
        Err(e) => {
            let line = e.to_string();
            prop_assert!(!line.is_empty());
            prop_assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
            prop_assert!(line.len() < 1000, "{line}");
        }
    }
    Ok(())
}

fn fuzz_cases() -> u32 {
    std::env::var("RATFLOW_TFLITE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: fuzz_cases() * 3,
        // A failure is a reader bug: shrink it, but record it even before (see above).
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_models_never_panic_and_errors_are_one_line(
        model in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let mut bytes = model_bytes()[model].clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_one(&bytes)?;
    }
}

/// Every prefix length around the structural part of each model (the first and last bytes
/// of the file), exhaustively: truncation is the most common real-world corruption.
#[test]
fn every_truncation_of_the_header_region() {
    for bytes in model_bytes() {
        for len in (0..bytes.len().min(2048)).chain(bytes.len().saturating_sub(256)..bytes.len()) {
            let e = read_recording_crashes(&bytes[..len]).expect_err("truncated file refused");
            assert!(!e.to_string().contains('\n'));
        }
    }
}

// ------------------------------------------------------------------ crash corpus

/// The corpus: inputs that once crashed a reader build (`crash-*.tflite`, none so far) and
/// seeds covering every kind of error (`seed-*.tflite`, see the folder's README). Each must be
/// read or refused without a panic, with exactly the line recorded in `expected.txt`
/// (`<file> <error line, or "ok">`).
#[test]
fn crash_corpus_regressions() {
    let dir = root().join("tests/fixtures/tflite-corpus");
    let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
    let mut checked = 0;
    for line in expected
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (file, want) = line.split_once(' ').expect("`<file> <expected>`");
        let bytes = std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let got = match read_recording_crashes(&bytes) {
            Ok(g) => {
                check_invariants(&g);
                "ok".to_string()
            }
            Err(e) => e.to_string(),
        };
        assert_eq!(got, want, "{file}");
        checked += 1;
    }
    let files = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "tflite")
        })
        .count();
    assert_eq!(
        checked, files,
        "every corpus file is listed in expected.txt"
    );
    assert!(checked >= 31);
}
