//! Inference speed of the golden engine: one thread, batch 1, as LiteRT's interpreter is
//! timed (`scripts/litert/bench.py`), so that the two can be compared in the same run.

use super::{Engine, Scratch};
use crate::rng::Rng;
use std::time::Instant;

/// Speed of one timed run.
#[derive(Clone, Copy, Debug)]
pub struct Speed {
    /// Images per wall-clock second (what LiteRT's bench reports).
    pub wall: f64,
    /// Images per second of this thread's CPU time, where the OS reports it (Linux): the
    /// figure that stays meaningful on a loaded machine.
    pub cpu: Option<f64>,
}

/// This thread's CPU time in seconds (Linux `/proc/thread-self/schedstat`, nanoseconds).
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns * 1e-9)
}

/// Images per second of `engine` on 16 random inputs cycled through, timed for `seconds`
/// after a warm-up of a quarter of that (at most one second).
pub fn images_per_second(engine: &Engine, seconds: f64, seed: u64) -> Speed {
    let mut rng = Rng::new(seed);
    let inputs: Vec<Vec<i8>> = (0..16)
        .map(|_| (0..engine.input_len()).map(|_| rng.i8()).collect())
        .collect();
    let mut scratch = Scratch::default();
    let mut run_for = |secs: f64| {
        let start = Instant::now();
        let cpu0 = thread_cpu_seconds();
        let mut n = 0usize;
        let mut sink = 0usize;
        loop {
            sink = sink.wrapping_add(engine.classify(&inputs[n % inputs.len()], &mut scratch));
            n += 1;
            let t = start.elapsed().as_secs_f64();
            if t >= secs {
                std::hint::black_box(sink);
                let cpu = match (cpu0, thread_cpu_seconds()) {
                    (Some(a), Some(b)) if b > a => Some(n as f64 / (b - a)),
                    _ => None,
                };
                return Speed {
                    wall: n as f64 / t,
                    cpu,
                };
            }
        }
    };
    run_for((seconds / 4.0).min(1.0));
    run_for(seconds)
}
