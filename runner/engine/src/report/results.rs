//! The results snapshot (`--results FILE`): what a user commits and diffs in CI. Canonical:
//! vectors sorted by id, fields in a fixed order, no timings, no file paths; each vector's class
//! per profile and a SHA-256 of its trace, so a change in any observed value shows in
//! `git diff` even when the class stays the same (the trace itself with `--results-trace`).

use std::collections::BTreeMap;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::Report;
use crate::compare::{Profile, ResultClass};
use crate::exec::Execution;

/// The version of the snapshot format this engine writes and reads.
pub const FORMAT: u32 = 1;

/// A results snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub format: u32,
    pub implementation: String,
    pub profiles: Vec<Profile>,
    pub vectors: Vec<Entry>,
}

/// One vector in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub results: BTreeMap<Profile, ResultClass>,
    /// `sha256:` of the trace's JSON (absent when the vector did not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_digest: Option<String>,
    /// The trace itself (`--results-trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Value>,
}

/// The digest of a trace: SHA-256 of its compact JSON, which is deterministic (fixed field
/// order, ordered maps, no timings).
pub fn digest(trace: &Execution) -> String {
    let json = serde_json::to_vec(trace).unwrap_or_default();
    let sum = Sha256::digest(&json);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The snapshot of a run.
pub fn snapshot(report: &Report, with_trace: bool) -> Snapshot {
    let mut vectors: Vec<Entry> = report
        .vectors
        .iter()
        .map(|v| Entry {
            id: v.id.clone(),
            results: v.results.iter().map(|(p, r)| (*p, r.class)).collect(),
            trace_digest: v.trace.as_ref().map(digest),
            trace: if with_trace {
                v.trace.as_ref().and_then(|t| serde_json::to_value(t).ok())
            } else {
                None
            },
        })
        .collect();
    vectors.sort_by(|a, b| a.id.cmp(&b.id));
    let mut profiles = report.profiles.clone();
    profiles.sort();
    Snapshot {
        format: FORMAT,
        implementation: without_dirs(&report.implementation),
        profiles,
        vectors,
    }
}

/// A door named by a path (`c:/home/me/libdma.so`) is recorded by its file name only, so the
/// snapshot is the same on every machine.
fn without_dirs(name: &str) -> String {
    let (kind, rest) = match name.split_once(':') {
        Some((k, r)) if r.contains('/') => (Some(k), r),
        _ => (None, name),
    };
    let file = rest.rsplit('/').next().unwrap_or(rest);
    match kind {
        Some(k) => format!("{k}:{file}"),
        None => file.to_string(),
    }
}

/// The snapshot as the text written to the file (pretty JSON, one field per line, newline at
/// the end).
pub fn render(s: &Snapshot) -> String {
    serde_json::to_string_pretty(s).unwrap_or_default() + "\n"
}

/// Reads a snapshot file; errors name the file, line and column.
pub fn read(path: &Path) -> Result<Snapshot, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s: Snapshot = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a dmaconf results snapshot: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if s.format != FORMAT {
        return Err(format!(
            "{}: results format {} is not supported (this dmaconf reads {FORMAT})",
            path.display(),
            s.format
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::without_dirs;

    #[test]
    fn door_names_lose_their_directories() {
        assert_eq!(without_dirs("c:/home/me/build/libdma.so"), "c:libdma.so");
        assert_eq!(without_dirs("py:mydma:Impl"), "py:mydma:Impl");
        assert_eq!(without_dirs("kernel:qemu"), "kernel:qemu");
        assert_eq!(without_dirs("reference"), "reference");
        assert_eq!(without_dirs("/opt/x/impl"), "impl");
    }
}
