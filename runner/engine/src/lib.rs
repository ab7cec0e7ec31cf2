//! dmaconf's engine: the vector model and loader, execution against an implementation on the
//! simulated machine, judging under a profile, reports and the suite's own lint.
//!
//! Architecture invariant: the engine is the only crate that knows vectors, YAML and
//! expectations. It reaches an implementation only through `dmaconf_platform::DmaApi` and the
//! machine only through its public observation API.
#![forbid(unsafe_code)]

pub mod check;
pub mod compare;
pub mod door;
pub mod exec;
pub mod explain;
pub mod expr;
pub mod fail_nth;
pub mod fault;
pub mod implementation;
pub mod invariants;
pub mod lint;
pub mod load;
pub mod model;
pub mod pattern;
pub mod preset;
pub mod report;
pub mod scope;
pub mod yaml;

pub use compare::{judge, Profile, ResultClass, Verdict};
pub use door::{Door, Observes};
pub use fault::{DoorFault, FaultKind};
pub use implementation::Implementation;
pub use load::{load_suite, Loaded, Suite};

/// The closed list of hazard names (`spec/2-outcomes.md` § "Hazards").
pub const HAZARD_NAMES: &[&str] = &[
    "unsynced_translation",
    "stale_translation",
    "outside_mask",
    "dirty_line_missed",
    "stale_cpu_line",
    "dirty_line_discarded",
];

/// The closed list of fault names (`spec/2-outcomes.md` § "Faults").
pub const FAULT_NAMES: &[&str] = &["none", "unmapped", "permission"];
