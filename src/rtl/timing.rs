//! Cycle counts of the generated pipeline, from a cycle-level model of its control.
//!
//! The datapath needs no model (the golden model covers values), but latency and throughput
//! depend on how the handshakes, input banks, pass credits and output slots of every layer
//! interact, which has no simple closed form once a layer's output stream (P beats per pass)
//! outlasts its pass (`in_features` cycles). This module steps exactly the control registers of
//! the templates in `templates/rtl/` with an always-valid source and an always-ready sink; the
//! co-simulation tests check that the Verilator-measured figures equal these.

use super::plan::{LayerPlan, Plan};

/// Cycle figures of a design under an always-valid source and an always-ready sink.
/// Inferences the steady-state interval is averaged over.
pub const INTERVAL_FRAMES: usize = 8;

#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Cycles from the first input beat's transfer to the cycle the output beat is valid.
    pub latency: u64,
    /// Steady-state cycles per inference: the mean gap between output beats over
    /// [`INTERVAL_FRAMES`] inferences (the control can settle into a pattern that repeats
    /// every 2 or 4 inferences, e.g. with the ping-pong banks, so one gap is not enough).
    pub interval: f64,
    /// Per layer: multiply-accumulate cycles per inference (`groups * in_features`).
    pub mac_cycles: Vec<u64>,
}

#[derive(Clone, Default)]
struct Layer {
    n_in: usize,
    groups: usize,
    p: usize,
    last_len: usize,
    rq_latency: usize,
    wr_bank: usize,
    wr_idx: usize,
    bank_full: [bool; 2],
    rd_bank: usize,
    i: usize,
    g: usize,
    credit: u32,
    v1: bool,
    last1: bool,
    rq_valid: bool,
    rq_pipe: Vec<bool>,
    slot_full: [bool; 2],
    slot_wr: usize,
    slot_rd: usize,
    ocnt: usize,
    og: usize,
}

impl Layer {
    fn new(l: &LayerPlan) -> Layer {
        Layer {
            n_in: l.in_features,
            groups: l.groups,
            p: l.p,
            last_len: l.last_group_len(),
            rq_latency: l.requant_latency() as usize,
            credit: 2,
            rq_pipe: vec![false; l.requant_latency() as usize],
            ..Layer::default()
        }
    }
    fn in_ready(&self) -> bool {
        !self.bank_full[self.wr_bank]
    }
    fn out_valid(&self) -> bool {
        self.slot_full[self.slot_rd]
    }
    /// One clock edge, given this cycle's input transfer and output transfer.
    fn step(&mut self, in_fire: bool, out_fire: bool) {
        let wr_last = self.wr_idx == self.n_in - 1;
        let pass_start = self.i == 0;
        let issue = self.bank_full[self.rd_bank] && (!pass_start || self.credit != 0);
        let last_i = self.i == self.n_in - 1;
        let last_g = self.g == self.groups - 1;
        let frame_done = issue && last_i && last_g;
        let glen = if self.og == self.groups - 1 {
            self.last_len
        } else {
            self.p
        };
        let olast = self.ocnt == glen - 1;
        let release = out_fire && olast;
        let q_valid = self.rq_pipe[self.rq_latency - 1];

        // Registers, in the order of the templates' always blocks (all read old values).
        let mut bank_full = self.bank_full;
        if in_fire && wr_last {
            bank_full[self.wr_bank] = true;
        }
        if frame_done {
            bank_full[self.rd_bank] = false;
        }
        if in_fire {
            self.wr_idx = if wr_last { 0 } else { self.wr_idx + 1 };
            if wr_last {
                self.wr_bank ^= 1;
            }
        }
        if issue {
            self.i = if last_i { 0 } else { self.i + 1 };
            if last_i {
                self.g = if last_g { 0 } else { self.g + 1 };
            }
            if frame_done {
                self.rd_bank ^= 1;
            }
        }
        self.bank_full = bank_full;
        self.credit = self.credit - u32::from(issue && pass_start) + u32::from(release);
        let done2 = self.v1 && self.last1;
        self.v1 = issue;
        self.last1 = last_i;
        let rq_in = self.rq_valid;
        self.rq_valid = done2;
        self.rq_pipe.rotate_right(1);
        self.rq_pipe[0] = rq_in;
        let mut slot_full = self.slot_full;
        if q_valid {
            slot_full[self.slot_wr] = true;
            self.slot_wr ^= 1;
        }
        if out_fire {
            self.ocnt = if olast { 0 } else { self.ocnt + 1 };
            if olast {
                slot_full[self.slot_rd] = false;
                self.slot_rd ^= 1;
                self.og = if self.og == self.groups - 1 {
                    0
                } else {
                    self.og + 1
                };
            }
        }
        self.slot_full = slot_full;
    }
}

/// Steps the design through `frames` inferences; returns (first input transfer cycle, cycle the
/// first output became valid, cycles of every output transfer).
fn run(plan: &Plan, frames: usize) -> (u64, u64, Vec<u64>) {
    let mut layers: Vec<Layer> = plan.layers.iter().map(Layer::new).collect();
    let classes = plan.classes;
    let (mut cnt, mut out_valid) = (0usize, false);
    let total_in = frames * plan.input_len;
    let mut sent = 0usize;
    let mut first_in = None;
    let mut first_valid = None;
    let mut outs = Vec::with_capacity(frames);
    let mut cycle = 0u64;
    // Generous bound: every layer's MACs plus every stream beat, per frame, plus slack.
    let per_frame: u64 = layers
        .iter()
        .map(|l| (l.groups * (l.n_in + l.p) + l.n_in + 16) as u64)
        .sum::<u64>()
        + classes as u64
        + 16;
    let limit = per_frame * (frames as u64 + 2) * 2;
    while outs.len() < frames {
        assert!(
            cycle < limit,
            "timing model did not finish: a control deadlock"
        );
        let n = layers.len();
        let src_valid = sent < total_in;
        let mut in_fire = vec![false; n];
        let mut out_fire = vec![false; n];
        for j in 0..n {
            let up_valid = if j == 0 {
                src_valid
            } else {
                layers[j - 1].out_valid()
            };
            in_fire[j] = up_valid && layers[j].in_ready();
            if j > 0 {
                out_fire[j - 1] = in_fire[j];
            }
        }
        let am_ready = cnt != classes;
        out_fire[n - 1] = layers[n - 1].out_valid() && am_ready;
        if out_valid && first_valid.is_none() {
            first_valid = Some(cycle);
        }
        if in_fire[0] {
            first_in.get_or_insert(cycle);
            sent += 1;
        }
        // The argmax output register takes a complete result at once: the sink is always
        // ready, so it is free every cycle.
        let mv = cnt == classes;
        if out_valid {
            outs.push(cycle); // the sink is always ready
        }
        for (j, l) in layers.iter_mut().enumerate() {
            l.step(in_fire[j], out_fire[j]);
        }
        if mv {
            cnt = 0;
            out_valid = true;
        } else {
            if out_fire[n - 1] {
                cnt += 1;
            }
            if out_valid {
                out_valid = false;
            }
        }
        cycle += 1;
    }
    (
        first_in.expect("input transferred"),
        first_valid.expect("output valid"),
        outs,
    )
}

/// Latency and steady-state interval of a plan.
pub fn timing(plan: &Plan) -> Timing {
    let frames = 2 * plan.layers.len() + 8 + 2 * INTERVAL_FRAMES;
    let (first_in, first_valid, outs) = run(plan, frames);
    let interval =
        (outs[frames - 1] - outs[frames - 1 - INTERVAL_FRAMES]) as f64 / INTERVAL_FRAMES as f64;
    Timing {
        latency: first_valid - first_in,
        interval,
        mac_cycles: plan.layers.iter().map(|l| l.mac_cycles()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::random::{RandomSpec, random_model};
    use crate::rtl::{Parallel, Plan};

    #[test]
    fn steady_state_is_reached_by_the_frames_simulated() {
        // The interval `timing` reports is the mean every later window of frames keeps, for
        // many shapes and parallelisms.
        for seed in 0..30u64 {
            let m = random_model(&RandomSpec {
                seed,
                inputs: Some(1 + (seed as usize * 11) % 40),
                ..Default::default()
            });
            for par in [Parallel::Each(1), Parallel::Each(3), Parallel::Full] {
                let plan = Plan::build(
                    &m,
                    &crate::rtl::Options {
                        parallel: par.clone(),
                        ..Default::default()
                    },
                )
                .unwrap();
                let t = timing(&plan);
                let (_, _, outs) = run(&plan, 64);
                // Every window of INTERVAL_FRAMES gaps after the warm-up has the same mean.
                for w in outs[2 * plan.layers.len() + 8..].windows(INTERVAL_FRAMES + 1) {
                    let mean = (w[INTERVAL_FRAMES] - w[0]) as f64 / INTERVAL_FRAMES as f64;
                    assert_eq!(mean, t.interval, "seed {seed} P {par}");
                }
            }
        }
    }
}
