//! Golden-model throughput, one thread, 784-128-64-10 (the default MLP's shape).
//!
//! Reports images/s as criterion "elements". The `dot_baseline` group times the bare
//! i16 multiply-accumulate over the same 109,184 weights per image, the machine's ceiling for
//! this layout, so the ratio shows what requantization and layer plumbing cost.
//! Run: `cargo bench --bench golden`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ratflow::golden::{Engine, Scratch};
use ratflow::model::random::{RandomSpec, random_model};
use ratflow::rng::Rng;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let model = random_model(&RandomSpec {
        seed: 1,
        layers: Some(vec![128, 64, 10]),
        k_bits: Some(8),
        rounding: Some(ratflow::quant::Rounding::Single),
        ..Default::default()
    });
    let engine = Engine::new(&model);
    let mut rng = Rng::new(2);
    let batch = 256;
    let inputs: Vec<Vec<i8>> = (0..batch)
        .map(|_| (0..784).map(|_| rng.i8()).collect())
        .collect();
    let macs: usize = model.layers().iter().map(|l| l.weight.len()).sum();

    let mut g = c.benchmark_group("golden");
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_function("classify_784_128_64_10", |b| {
        let mut scratch = Scratch::default();
        b.iter(|| {
            let mut sum = 0usize;
            for x in &inputs {
                sum += engine.classify(black_box(x), &mut scratch);
            }
            sum
        })
    });
    g.bench_function("trace_784_128_64_10", |b| {
        b.iter(|| {
            inputs
                .iter()
                .map(|x| engine.run(black_box(x), true).class)
                .sum::<usize>()
        })
    });
    // Ceiling: the same number of i16 MACs with no requantization or layer boundaries.
    let w: Vec<i16> = (0..macs).map(|_| rng.i8() as i16).collect();
    let xs: Vec<Vec<i16>> = inputs
        .iter()
        .map(|x| x.iter().map(|&v| v as i16).collect())
        .collect();
    g.bench_function("dot_baseline_same_macs", |b| {
        b.iter(|| {
            let mut total = 0i32;
            for x in &xs {
                for row in w.chunks_exact(784) {
                    let mut lanes = [0i32; 16];
                    for (xc, wc) in x.chunks_exact(16).zip(row.chunks_exact(16)) {
                        for j in 0..16 {
                            lanes[j] = lanes[j].wrapping_add(xc[j] as i32 * wc[j] as i32);
                        }
                    }
                    total = total.wrapping_add(lanes.iter().sum::<i32>());
                }
            }
            black_box(total)
        })
    });
    g.finish();
    eprintln!("MACs per image: {macs}");
}

criterion_group!(benches, bench);
criterion_main!(benches);
