//! Where a network runs and which implementation of its custom ops it uses.
//!
//! The training graph has a handful of ops that candle does not provide in the form we need
//! (the fused dense product, the im2col gather, weight/bias fake quantization, the k-bit
//! requantizer, the int8 ADD, AdamW). Each has two implementations:
//!
//! * **fast**: a candle custom op with a hand-written CPU kernel (`cpu_fwd`/`bwd`), the only
//!   kind candle lets us write without a device-specific kernel;
//! * **portable**: the same function composed from candle's standard tensor ops (matmul,
//!   index_select, f64/i64 arithmetic, `detach` for straight-through gradients), so it runs
//!   on any device candle supports (CUDA, Metal).
//!
//! The portable path is selected automatically when the device is not the CPU; tests force it
//! on the CPU to prove it computes the same integers. Integer results (weight and bias codes,
//! accumulators, requantized codes) are identical on both paths; float results (the float
//! network, gradients) agree to rounding (summation order differs).

use anyhow::{Result, bail};
use candle_core::Device;

/// A device and the op implementation used on it.
#[derive(Clone, Debug)]
pub struct Exec {
    pub device: Device,
    /// Use the standard-op implementations (always true off the CPU).
    pub portable: bool,
}

impl Default for Exec {
    fn default() -> Self {
        Exec::cpu()
    }
}

impl Exec {
    /// The CPU with the fast custom kernels.
    pub fn cpu() -> Exec {
        Exec {
            device: Device::Cpu,
            portable: false,
        }
    }

    /// `device` with the implementation it needs: fast on the CPU, portable elsewhere.
    pub fn on(device: Device) -> Exec {
        let portable = !device.is_cpu();
        Exec { device, portable }
    }

    /// The CPU running the portable implementations (tests of the off-CPU path).
    pub fn cpu_portable() -> Exec {
        Exec {
            device: Device::Cpu,
            portable: true,
        }
    }

    /// `--device cpu | cuda | cuda:N | metal | metal:N`. A GPU needs ratflow built with the
    /// matching cargo feature (`cuda`, `metal`); candle's own error says so otherwise.
    pub fn parse(spec: &str) -> Result<Exec> {
        let (kind, ordinal) = match spec.split_once(':') {
            Some((k, n)) => match n.parse::<usize>() {
                Ok(n) => (k, n),
                Err(_) => bail!("--device {spec:?}: the ordinal {n:?} is not a number"),
            },
            None => (spec, 0),
        };
        let device = match kind {
            "cpu" if ordinal == 0 => Device::Cpu,
            "cuda" => Device::new_cuda(ordinal)
                .map_err(|e| anyhow::anyhow!("--device {spec}: {}", first_line(&e.to_string())))?,
            "metal" => Device::new_metal(ordinal)
                .map_err(|e| anyhow::anyhow!("--device {spec}: {}", first_line(&e.to_string())))?,
            _ => bail!("--device {spec:?}: use cpu, cuda, cuda:N, metal or metal:N"),
        };
        Ok(Exec::on(device))
    }

    /// `cpu`, `cpu (portable ops)`, `cuda:0`, ... for provenance and messages.
    pub fn describe(&self) -> String {
        let dev = match &self.device {
            Device::Cpu => "cpu".to_string(),
            Device::Cuda(_) => "cuda".to_string(),
            Device::Metal(_) => "metal".to_string(),
        };
        if self.portable && self.device.is_cpu() {
            format!("{dev} (portable ops)")
        } else {
            dev
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert!(!Exec::parse("cpu").unwrap().portable);
        for bad in ["gpu", "cpu:1", "cuda:x", ""] {
            assert!(Exec::parse(bad).is_err(), "{bad}");
        }
        // Without the cuda feature candle refuses the device with a one-line reason.
        if !cfg!(feature = "cuda") {
            let e = Exec::parse("cuda").unwrap_err().to_string();
            assert!(e.starts_with("--device cuda: "), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
