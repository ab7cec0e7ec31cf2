//! `dmaconf diff OLD NEW`: two results snapshots compared per vector and profile. A class that
//! got worse, or a new vector that does not pass, is a regression (exit 1); for a trace that
//! changed, the first differing step and field is named and its events are shown as a line
//! diff, like a run's own mismatch diff.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::results::{Entry, Snapshot};
use crate::compare::{Profile, ResultClass};

/// How bad a class is, for telling regressions from improvements. Classes of equal rank
/// (pass and misuse: both are what the vector asks for) are a change, not a regression.
pub(crate) fn rank(c: ResultClass) -> u8 {
    match c {
        ResultClass::Pass | ResultClass::Misuse => 0,
        ResultClass::NotSupported => 1,
        ResultClass::Waived => 2,
        ResultClass::Fail => 3,
        ResultClass::Timeout | ResultClass::HarnessError => 4,
        ResultClass::Crash => 5,
    }
}

/// What changed between two snapshots.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    /// One line (or block) per change, in id order.
    pub lines: Vec<String>,
    pub regressions: usize,
    pub improvements: usize,
    /// Class changes of equal rank, traces that changed under the same class, added and
    /// removed vectors that are not regressions.
    pub other: usize,
}

impl Diff {
    /// The text `dmaconf diff` prints, ending with a verdict line.
    pub fn text(&self) -> String {
        let mut out: String = self.lines.iter().map(|l| format!("{l}\n")).collect();
        let verdict = if self.regressions > 0 {
            format!(
                "{} regression(s), {} improvement(s), {} other change(s)",
                self.regressions, self.improvements, self.other
            )
        } else if self.improvements > 0 {
            format!(
                "no regression: {} improvement(s), {} other change(s)",
                self.improvements, self.other
            )
        } else if self.other > 0 {
            format!(
                "no regression, no improvement: {} other change(s)",
                self.other
            )
        } else {
            "nothing changed".to_string()
        };
        out.push_str(&verdict);
        out.push('\n');
        out
    }
}

fn classes(e: &Entry) -> String {
    e.results
        .iter()
        .map(|(p, c)| format!("{} {}", p.name(), c.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Compares two snapshots.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Diff {
    let mut d = Diff::default();
    if old.implementation != new.implementation {
        d.lines.push(format!(
            "note: implementation `{}` -> `{}`",
            old.implementation, new.implementation
        ));
    }
    let before: BTreeMap<&str, &Entry> = old.vectors.iter().map(|e| (e.id.as_str(), e)).collect();
    let after: BTreeMap<&str, &Entry> = new.vectors.iter().map(|e| (e.id.as_str(), e)).collect();
    let ids: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for id in ids {
        match (before.get(id), after.get(id)) {
            (Some(o), None) => {
                d.other += 1;
                d.lines
                    .push(format!("REMOVED    {id} (was {})", classes(o)));
            }
            (None, Some(n)) => {
                let red = n.results.values().any(|c| !c.is_ok());
                if red {
                    d.regressions += 1;
                    d.lines
                        .push(format!("REGRESSION {id}: new vector, {}", classes(n)));
                } else {
                    d.other += 1;
                    d.lines.push(format!("ADDED      {id} ({})", classes(n)));
                }
            }
            (Some(o), Some(n)) => compare_entry(&mut d, id, o, n),
            (None, None) => {}
        }
    }
    d
}

fn compare_entry(d: &mut Diff, id: &str, o: &Entry, n: &Entry) {
    let profiles: BTreeSet<Profile> = o.results.keys().chain(n.results.keys()).copied().collect();
    let mut class_changed = false;
    for p in profiles {
        let at = format!("{}::{id}", p.name());
        match (o.results.get(&p), n.results.get(&p)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                class_changed = true;
                let (word, count) = match rank(*b).cmp(&rank(*a)) {
                    std::cmp::Ordering::Greater => ("REGRESSION", &mut d.regressions),
                    std::cmp::Ordering::Less => ("IMPROVED  ", &mut d.improvements),
                    std::cmp::Ordering::Equal => ("CHANGED   ", &mut d.other),
                };
                *count += 1;
                d.lines
                    .push(format!("{word} {at}: {} -> {}", a.name(), b.name()));
            }
            (None, Some(b)) if !b.is_ok() => {
                d.regressions += 1;
                d.lines
                    .push(format!("REGRESSION {at}: newly judged, {}", b.name()));
            }
            (None, Some(b)) => {
                d.other += 1;
                d.lines
                    .push(format!("ADDED      {at}: newly judged, {}", b.name()));
            }
            (Some(a), None) => {
                d.other += 1;
                d.lines.push(format!(
                    "REMOVED    {at}: no longer judged (was {})",
                    a.name()
                ));
            }
            (None, None) => {}
        }
    }
    if o.trace_digest == n.trace_digest {
        return;
    }
    let what = match (&o.trace, &n.trace) {
        (Some(a), Some(b)) => first_difference(a, b),
        _ => "the trace digest changed (write both snapshots with --results-trace to see the step)"
            .to_string(),
    };
    if class_changed {
        d.lines.push(format!("           trace: {what}"));
    } else {
        d.other += 1;
        d.lines
            .push(format!("TRACE      {id} ({}): {what}", classes(n)));
    }
}

/// Shows a JSON value compactly (strings without quotes).
fn shown(v: Option<&Value>) -> String {
    match v {
        None => "(absent)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The first path (in field order) where two JSON values differ, with both sides.
fn first_field(
    a: Option<&Value>,
    b: Option<&Value>,
    path: &str,
) -> Option<(String, String, String)> {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if let Some(found) = first_field(x.get(k), y.get(k), &p) {
                    return Some(found);
                }
            }
            None
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                if let Some(found) = first_field(x.get(i), y.get(i), &format!("{path}[{i}]")) {
                    return Some(found);
                }
            }
            None
        }
        (x, y) if x == y => None,
        (x, y) => Some((path.to_string(), shown(x), shown(y))),
    }
}

/// An event as one line, `kind field=value ...`, as a run's own events diff shows it.
fn event_line(e: &Value) -> String {
    let Value::Object(m) = e else {
        return e.to_string();
    };
    let kind = m.get("event").map(|v| shown(Some(v))).unwrap_or_default();
    let fields: Vec<String> = m
        .iter()
        .filter(|(k, _)| *k != "event")
        .map(|(k, v)| format!("{k}={}", shown(Some(v))))
        .collect();
    format!("{kind} {}", fields.join(" "))
        .trim_end()
        .to_string()
}

fn events_diff(a: &Value, b: &Value) -> Option<String> {
    let lines = |v: &Value| -> String {
        v.get("events")
            .and_then(Value::as_array)
            .map(|es| es.iter().map(|e| event_line(e) + "\n").collect())
            .unwrap_or_default()
    };
    let (x, y) = (lines(a), lines(b));
    (x != y).then(|| {
        similar::TextDiff::from_lines(&x, &y)
            .unified_diff()
            .header("old", "new")
            .to_string()
    })
}

/// Where two traces first differ: the preset, the step (with its action) and the field.
pub fn first_difference(old: &Value, new: &Value) -> String {
    let none = Vec::new();
    let runs = |v: &Value| {
        v.get("runs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (ra, rb) = (runs(old), runs(new));
    for i in 0..ra.len().max(rb.len()) {
        let (a, b) = (ra.get(i), rb.get(i));
        if a == b {
            continue;
        }
        let preset = shown(b.or(a).and_then(|r| r.get("preset")));
        let (Some(a), Some(b)) = (a, b) else {
            return format!(
                "preset {preset}: run only in the {} snapshot",
                if a.is_some() { "old" } else { "new" }
            );
        };
        let steps = |r: &Value| {
            r.get("steps")
                .and_then(Value::as_array)
                .unwrap_or(&none)
                .clone()
        };
        let (sa, sb) = (steps(a), steps(b));
        for j in 0..sa.len().max(sb.len()) {
            let (x, y) = (sa.get(j), sb.get(j));
            if x == y {
                continue;
            }
            let action = shown(y.or(x).and_then(|s| s.get("action")));
            let Some((field, was, is)) = first_field(x, y, "") else {
                continue;
            };
            let mut out = format!("preset {preset}, step {j} ({action}): {field}: {was} -> {is}");
            if let (Some(x), Some(y)) = (x, y) {
                if let Some(d) = events_diff(x, y) {
                    for l in d.lines() {
                        out.push_str(&format!("\n             {l}"));
                    }
                }
            }
            return out;
        }
        let mut rest_a = a.clone();
        let mut rest_b = b.clone();
        for r in [&mut rest_a, &mut rest_b] {
            if let Value::Object(m) = r {
                m.remove("steps");
            }
        }
        if let Some((field, was, is)) = first_field(Some(&rest_a), Some(&rest_b), "") {
            return format!("preset {preset}: {field}: {was} -> {is}");
        }
    }
    match first_field(Some(old), Some(new), "") {
        Some((field, was, is)) => format!("{field}: {was} -> {is}"),
        None => "the digest changed but the traces are equal (edited by hand?)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(id: &str, r: &[(Profile, ResultClass)], digest: &str, trace: Option<Value>) -> Entry {
        Entry {
            id: id.into(),
            results: r.iter().copied().collect(),
            trace_digest: Some(digest.into()),
            trace,
        }
    }

    fn snap(v: Vec<Entry>) -> Snapshot {
        Snapshot {
            format: 1,
            implementation: "x".into(),
            profiles: Profile::ALL.to_vec(),
            vectors: v,
        }
    }

    use Profile::*;
    use ResultClass::*;

    #[test]
    fn regressions_improvements_and_nothing() {
        let old = snap(vec![
            entry("a", &[(Linux, Pass)], "1", None),
            entry("b", &[(Linux, Fail)], "2", None),
        ]);
        assert_eq!(diff(&old, &old).text(), "nothing changed\n");
        let better = snap(vec![
            entry("a", &[(Linux, Pass)], "1", None),
            entry("b", &[(Linux, Pass)], "3", None),
        ]);
        let d = diff(&old, &better);
        assert_eq!((d.regressions, d.improvements), (0, 1));
        assert!(
            d.text()
                .ends_with("no regression: 1 improvement(s), 0 other change(s)\n"),
            "{}",
            d.text()
        );
        let worse = diff(&better, &old);
        assert_eq!(worse.regressions, 1);
        assert!(
            worse
                .text()
                .starts_with("REGRESSION linux::b: pass -> fail\n"),
            "{}",
            worse.text()
        );
        let new_failure = snap(vec![
            entry("a", &[(Linux, Pass)], "1", None),
            entry("b", &[(Linux, Fail)], "2", None),
            entry("c", &[(Linux, Crash)], "4", None),
        ]);
        assert_eq!(diff(&old, &new_failure).regressions, 1);
        let waived = snap(vec![
            entry("a", &[(Linux, Waived)], "1", None),
            entry("b", &[(Linux, Fail)], "2", None),
        ]);
        assert_eq!(
            diff(&old, &waived).regressions,
            1,
            "pass -> waived is worse"
        );
    }

    #[test]
    fn a_trace_change_names_the_first_step_and_field() {
        let run = |addr: &str| {
            json!({"runs": [{"preset": "p", "steps": [
                {"index": 0, "action": "dma_iova_try_alloc", "ret": true},
                {"index": 1, "action": "dma_iova_link", "ret": 0,
                 "events": [{"event": "iommu.map", "iova": addr, "len": "0x1000"}]}
            ]}]})
        };
        let old = snap(vec![entry(
            "a",
            &[(Linux, Pass)],
            "1",
            Some(run("0xfffff000")),
        )]);
        let new = snap(vec![entry(
            "a",
            &[(Linux, Pass)],
            "2",
            Some(run("0xffffe000")),
        )]);
        let d = diff(&old, &new);
        assert_eq!((d.regressions, d.other), (0, 1));
        let t = d.text();
        assert!(t.starts_with("TRACE      a (linux pass): preset p, step 1 (dma_iova_link): events[0].iova: 0xfffff000 -> 0xffffe000\n"), "{t}");
        assert!(t.contains("-iommu.map iova=0xfffff000 len=0x1000"), "{t}");
        assert!(t.contains("+iommu.map iova=0xffffe000 len=0x1000"), "{t}");
        assert!(
            t.ends_with("no regression, no improvement: 1 other change(s)\n"),
            "{t}"
        );
    }
}
