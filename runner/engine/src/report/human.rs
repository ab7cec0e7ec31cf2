//! The terminal report: failures with their diffs, waivers in one line each, then the counts.

use super::Report;
use crate::compare::{ResultClass, Verdict};

/// A verdict's reason and mismatches, indented, one per line (diffs under their mismatch).
pub fn details(r: &Verdict) -> String {
    let mut out = String::new();
    if let Some(reason) = &r.reason {
        out.push_str(&format!("    {reason}\n"));
    }
    for m in &r.mismatches {
        let line = m.line.map(|l| format!(" (line {l})")).unwrap_or_default();
        let step = m
            .step
            .map(|s| format!("step {s}{line}, "))
            .unwrap_or_default();
        out.push_str(&format!(
            "    [{}] {step}{}: expected {}, actual {}\n",
            m.preset, m.what, m.expected, m.actual
        ));
        if let Some(d) = &m.diff {
            for line in d.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
    }
    out
}

/// The human-readable report.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    for e in &report.errors {
        out.push_str(&format!("error: {e}\n"));
    }
    for v in &report.vectors {
        for e in &v.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        for (p, r) in &v.results {
            if r.class == ResultClass::Waived {
                if let Some(w) = v.waived.get(p) {
                    out.push_str(&format!(
                        "WAIVED {}::{} (expected {}: {})\n",
                        p.name(),
                        v.id,
                        w.result.name(),
                        w.reason
                    ));
                }
                continue;
            }
            if r.class.is_ok() {
                continue;
            }
            out.push_str(&format!(
                "{} {}::{} ({}:{})\n",
                r.class.name().to_uppercase(),
                p.name(),
                v.id,
                v.file.display(),
                v.line
            ));
            out.push_str(&details(r));
        }
    }
    out.push_str(&format!("implementation: {}\n", report.implementation));
    for (p, counts) in &report.summary {
        let parts: Vec<String> = counts
            .iter()
            .filter(|(c, n)| **n > 0 || matches!(c, ResultClass::Pass | ResultClass::Fail))
            .map(|(c, n)| format!("{n} {}", c.name()))
            .collect();
        out.push_str(&format!(
            "{:<9} {}\n",
            format!("{}:", p.name()),
            parts.join(", ")
        ));
    }
    let problems =
        report.errors.len() + report.vectors.iter().map(|v| v.errors.len()).sum::<usize>();
    if problems > 0 {
        out.push_str(&format!("errors:   {problems} (listed above)\n"));
    }
    out
}
