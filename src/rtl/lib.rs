//! The hand-written Verilog library (`rtl/lib/`, its README gives every module's contract),
//! compiled into the binary so that a generated folder is complete without the source tree:
//! the generator copies the modules a design instantiates next to its top, unchanged.

/// A library module: its name (= file stem) and the modules it instantiates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LibModule {
    Fifo,
    Fork,
    Dwc,
    Window,
    Mac,
    DwMac,
    Rescale,
    Saturate,
    Requant,
    AvgPool,
    MaxPool,
    Add,
    Argmax,
}

impl LibModule {
    pub fn name(self) -> &'static str {
        match self {
            LibModule::Fifo => "rf_fifo",
            LibModule::Fork => "rf_fork",
            LibModule::Dwc => "rf_dwc",
            LibModule::Window => "rf_window",
            LibModule::Mac => "rf_mac",
            LibModule::DwMac => "rf_dwmac",
            LibModule::Rescale => "rf_rescale",
            LibModule::Saturate => "rf_saturate",
            LibModule::Requant => "rf_requant",
            LibModule::AvgPool => "rf_avgpool",
            LibModule::MaxPool => "rf_maxpool",
            LibModule::Add => "rf_add",
            LibModule::Argmax => "rf_argmax",
        }
    }

    /// The Verilog source, as in `rtl/lib/`.
    pub fn source(self) -> &'static str {
        match self {
            LibModule::Fifo => include_str!("../../rtl/lib/rf_fifo.v"),
            LibModule::Fork => include_str!("../../rtl/lib/rf_fork.v"),
            LibModule::Dwc => include_str!("../../rtl/lib/rf_dwc.v"),
            LibModule::Window => include_str!("../../rtl/lib/rf_window.v"),
            LibModule::Mac => include_str!("../../rtl/lib/rf_mac.v"),
            LibModule::DwMac => include_str!("../../rtl/lib/rf_dwmac.v"),
            LibModule::Rescale => include_str!("../../rtl/lib/rf_rescale.v"),
            LibModule::Saturate => include_str!("../../rtl/lib/rf_saturate.v"),
            LibModule::Requant => include_str!("../../rtl/lib/rf_requant.v"),
            LibModule::AvgPool => include_str!("../../rtl/lib/rf_avgpool.v"),
            LibModule::MaxPool => include_str!("../../rtl/lib/rf_maxpool.v"),
            LibModule::Add => include_str!("../../rtl/lib/rf_add.v"),
            LibModule::Argmax => include_str!("../../rtl/lib/rf_argmax.v"),
        }
    }

    /// Library modules this one instantiates.
    pub fn children(self) -> &'static [LibModule] {
        match self {
            LibModule::Requant | LibModule::Add => &[LibModule::Rescale, LibModule::Saturate],
            _ => &[],
        }
    }
}

/// Include files every library module reads (`include "rf_check.vh"` etc.).
pub const HEADERS: &[(&str, &str)] = &[
    ("rf_check.vh", include_str!("../../rtl/lib/rf_check.vh")),
    (
        "rf_functions.vh",
        include_str!("../../rtl/lib/rf_functions.vh"),
    ),
];

/// `used` and everything they instantiate, children first (dependency order), each once.
pub fn closure(used: &[LibModule]) -> Vec<LibModule> {
    let mut all: Vec<LibModule> = Vec::new();
    for &m in used {
        for &c in m.children() {
            if !all.contains(&c) {
                all.push(c);
            }
        }
    }
    let mut rest: Vec<LibModule> = used.iter().copied().filter(|m| !all.contains(m)).collect();
    rest.sort();
    rest.dedup();
    all.sort();
    all.extend(rest);
    all
}
