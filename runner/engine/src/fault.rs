//! Typed faults a door raises from inside an implementation call.
//!
//! `DmaApi` calls return plain values (the C ABI's shape), so a door whose implementation lives
//! elsewhere (a child process behind the wire) has no return value to say "the implementation
//! died". It raises a [`DoorFault`] instead: [`DoorFault::raise`] unwinds with the fault as the
//! payload (without running the panic hook, so nothing is printed), and `exec.rs` turns the
//! payload into the run's [`Stop`] with the step it happened in. Any other panic payload is a
//! panic of an in-process implementation: a `crash`.

use crate::exec::Stop;

/// Which result class a door fault is (`spec/2-outcomes.md`, "Result classes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The implementation ended abnormally: a signal, an abort, an unexpected exit.
    Crash,
    /// The implementation did not answer within the door's time limit.
    Timeout,
    /// The door could not drive the implementation (a protocol violation, a failed start).
    Harness,
    /// The implementation says it does not provide the call.
    NotSupported,
}

/// A fault of the implementation behind a door, raised from inside a `DmaApi` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoorFault {
    pub kind: FaultKind,
    /// What happened, e.g. "killed by SIGSEGV"; `exec.rs` prefixes the step.
    pub detail: String,
}

impl DoorFault {
    pub fn new(kind: FaultKind, detail: impl Into<String>) -> DoorFault {
        DoorFault {
            kind,
            detail: detail.into(),
        }
    }

    /// Leaves the current `DmaApi` call; `exec.rs` catches the fault and ends the run with it.
    pub fn raise(self) -> ! {
        std::panic::resume_unwind(Box::new(self))
    }

    /// The fault carried by a caught unwind payload; any other payload is a panic of an
    /// in-process implementation, which is a crash.
    pub fn from_payload(payload: Box<dyn std::any::Any + Send>) -> DoorFault {
        match payload.downcast::<DoorFault>() {
            Ok(fault) => *fault,
            Err(p) => {
                let text = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "non-string panic payload".into());
                DoorFault::new(FaultKind::Crash, format!("implementation panicked: {text}"))
            }
        }
    }

    /// How a run that met this fault ends; `context` says where (the step).
    pub fn stop(&self, context: &str) -> Stop {
        let text = format!("{context}: {}", self.detail);
        match self.kind {
            FaultKind::Crash => Stop::Crash(text),
            FaultKind::Timeout => Stop::Timeout(text),
            FaultKind::Harness => Stop::Harness(text),
            FaultKind::NotSupported => Stop::NotSupported(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::catch_unwind;

    #[test]
    fn a_raised_fault_keeps_its_class_and_a_panic_is_a_crash() {
        let raised = catch_unwind(|| DoorFault::new(FaultKind::Timeout, "no answer").raise());
        let fault = DoorFault::from_payload(raised.unwrap_err());
        assert_eq!(
            fault.stop("step 3 (dma_iova_link)"),
            Stop::Timeout("step 3 (dma_iova_link): no answer".into())
        );
        let panicked = catch_unwind(|| panic!("boom"));
        let fault = DoorFault::from_payload(panicked.unwrap_err());
        assert_eq!(
            fault.stop("probe"),
            Stop::Crash("probe: implementation panicked: boom".into())
        );
        for (kind, stop) in [
            (FaultKind::Crash, Stop::Crash("x: d".into())),
            (FaultKind::Harness, Stop::Harness("x: d".into())),
            (FaultKind::NotSupported, Stop::NotSupported("x: d".into())),
        ] {
            assert_eq!(DoorFault::new(kind, "d").stop("x"), stop);
        }
    }
}
