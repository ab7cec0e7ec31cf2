//! Doors: the ways a vector reaches an implementation. The in-process door drives a `DmaApi`
//! on the simulated machine (`exec.rs`); other doors (a real kernel under QEMU) execute whole
//! vectors elsewhere and hand back the same `Execution`, which `compare.rs` judges alike.

use crate::exec::Execution;
use crate::implementation::{unmet, Implementation};
use crate::model::Vector;
use crate::preset::Presets;

/// What a door can observe of the platform, when it cannot see everything the machine records.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Observes {
    /// Event kinds the door sees; expected events of other kinds are not compared.
    pub event_kinds: Vec<String>,
    /// Per kind, the fields the door sees (a kind absent here: all fields).
    pub event_fields: Vec<(String, Vec<String>)>,
    /// Per kind, fields the door cannot see on an event that failed (its `ret` is not 0): the
    /// kernel's `map` tracepoint reports the bytes mapped, so a failed map's asked length is
    /// not visible there.
    pub unseen_when_failed: Vec<(String, Vec<String>)>,
    /// The misuse-checker codes the door's own checker can see (None: all of them); `detected`
    /// expectations of other codes are not compared (spec/10-misuse-checker.md).
    pub checker_codes: Option<Vec<String>>,
}

impl Observes {
    pub fn sees_kind(&self, kind: &str) -> bool {
        self.event_kinds.iter().any(|k| k == kind)
    }
    pub fn unseen_when_failed(&self, kind: &str, field: &str) -> bool {
        self.unseen_when_failed
            .iter()
            .any(|(k, fields)| k == kind && fields.iter().any(|f| f == field))
    }
    pub fn sees_code(&self, code: &str) -> bool {
        self.checker_codes
            .as_ref()
            .is_none_or(|codes| codes.iter().any(|c| c == code))
    }
    pub fn sees_field(&self, kind: &str, field: &str) -> bool {
        match self.event_fields.iter().find(|(k, _)| k == kind) {
            Some((_, fields)) => fields.iter().any(|f| f == field),
            None => true,
        }
    }
}

/// A way to run vectors against one implementation.
pub trait Door {
    /// Names the implementation in reports.
    fn name(&self) -> String;
    /// Requirements of a vector this door cannot meet (empty: it can run it).
    fn unmet(&self, vector: &Vector) -> Vec<String>;
    /// Called once with every vector about to run, before any `execute`: a door that boots a
    /// machine runs them all here and keeps the results.
    fn prepare(&self, _vectors: &[&Vector], _presets: &Presets) {}
    /// Executes one vector on every preset it names.
    fn execute(&self, vector: &Vector, presets: &Presets) -> Execution;
}

impl Door for Implementation {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn unmet(&self, vector: &Vector) -> Vec<String> {
        unmet(vector.requires.as_deref().unwrap_or(&[]), self)
    }
    fn execute(&self, vector: &Vector, presets: &Presets) -> Execution {
        crate::exec::execute(vector, presets, self)
    }
}

#[cfg(test)]
mod tests {
    use super::Observes;

    #[test]
    fn a_door_is_judged_only_on_the_checker_codes_it_sees() {
        let all = Observes::default();
        assert!(all.sees_code("CHECK-10"));
        let kernel = Observes {
            checker_codes: Some(vec!["CHECK-14".into()]),
            ..Observes::default()
        };
        assert!(kernel.sees_code("CHECK-14"));
        assert!(!kernel.sees_code("CHECK-10"));
    }
}
