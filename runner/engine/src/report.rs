//! Running a selection of the suite and reporting it (human text or one JSON document).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::compare::{judge, Profile, ResultClass, Verdict};
use crate::door::Door;
use crate::exec::Execution;
use crate::load::{Loaded, Suite};

/// Which vectors to run.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Glob patterns over vector ids (any matches).
    pub ids: Vec<String>,
    /// Rule IDs (a vector citing any of them matches).
    pub rules: Vec<String>,
    /// Areas (a file's header `area`).
    pub areas: Vec<String>,
}

impl Filter {
    pub fn matches(&self, loaded: &Loaded) -> Result<bool, String> {
        if !self.ids.is_empty() {
            let mut b = globset::GlobSetBuilder::new();
            for g in &self.ids {
                b.add(globset::Glob::new(g).map_err(|e| format!("bad id pattern `{g}`: {e}"))?);
            }
            let set = b.build().map_err(|e| e.to_string())?;
            if !set.is_match(&loaded.id) {
                return Ok(false);
            }
        }
        if !self.areas.is_empty() && !self.areas.contains(&loaded.area) {
            return Ok(false);
        }
        if !self.rules.is_empty() {
            let cites = loaded
                .vector
                .as_ref()
                .map(|v| v.rules.iter().any(|r| self.rules.contains(r)))
                .unwrap_or(false);
            if !cites {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// One vector's results.
#[derive(Clone, Debug, Serialize)]
pub struct VectorReport {
    pub id: String,
    pub file: PathBuf,
    pub line: u64,
    pub area: String,
    pub rules: Vec<String>,
    pub results: BTreeMap<Profile, Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<Execution>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub implementation: String,
    pub profiles: Vec<Profile>,
    pub summary: BTreeMap<Profile, BTreeMap<ResultClass, usize>>,
    pub vectors: Vec<VectorReport>,
    /// Problems outside any one vector (bad presets, unreadable files).
    pub errors: Vec<String>,
}

impl Report {
    /// Exit status 0 only when nothing failed, crashed, timed out or could not run.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
            && self
                .vectors
                .iter()
                .all(|v| v.results.values().all(|r| r.class.is_ok()))
    }
}

/// Executes one loaded vector once and judges it under each profile.
pub fn run_one(
    loaded: &Loaded,
    suite: &Suite,
    door: &dyn Door,
    profiles: &[Profile],
) -> VectorReport {
    let mut results = BTreeMap::new();
    let mut trace = None;
    let rules = loaded
        .vector
        .as_ref()
        .map(|v| v.rules.clone())
        .unwrap_or_default();
    match &loaded.vector {
        Err(e) => {
            for p in profiles {
                results.insert(*p, Verdict::of(ResultClass::HarnessError, e.to_string()));
            }
        }
        Ok(v) => {
            let missing = door.unmet(v);
            if !missing.is_empty() {
                for p in profiles {
                    results.insert(
                        *p,
                        Verdict::of(
                            ResultClass::NotSupported,
                            format!("requires {}", missing.join(", ")),
                        ),
                    );
                }
            } else {
                let exec = door.execute(v, &suite.presets);
                for p in profiles {
                    results.insert(*p, judge(v, &exec, *p));
                }
                trace = Some(exec);
            }
        }
    }
    VectorReport {
        id: loaded.id.clone(),
        file: loaded.file.clone(),
        line: loaded.line,
        area: loaded.area.clone(),
        rules,
        results,
        trace,
    }
}

/// Runs every selected vector. `progress` is called after each vector (for a progress bar).
pub fn run_suite(
    suite: &Suite,
    door: &dyn Door,
    profiles: &[Profile],
    filter: &Filter,
    mut progress: impl FnMut(&VectorReport),
) -> Result<Report, String> {
    let mut selected = Vec::new();
    for loaded in &suite.vectors {
        if filter.matches(loaded)? {
            selected.push(loaded);
        }
    }
    let runnable: Vec<&crate::model::Vector> = selected
        .iter()
        .filter_map(|l| l.vector.as_ref().ok())
        .filter(|v| door.unmet(v).is_empty())
        .collect();
    door.prepare(&runnable, &suite.presets);
    let mut vectors = Vec::new();
    for loaded in selected {
        let r = run_one(loaded, suite, door, profiles);
        progress(&r);
        vectors.push(r);
    }
    let mut summary: BTreeMap<Profile, BTreeMap<ResultClass, usize>> = BTreeMap::new();
    for p in profiles {
        let counts = summary.entry(*p).or_default();
        for c in ResultClass::ALL {
            counts.insert(c, 0);
        }
        for v in &vectors {
            if let Some(r) = v.results.get(p) {
                *counts.entry(r.class).or_default() += 1;
            }
        }
    }
    Ok(Report {
        implementation: door.name(),
        profiles: profiles.to_vec(),
        summary,
        vectors,
        errors: suite.errors.iter().map(|e| e.to_string()).collect(),
    })
}

/// The human-readable report: failures with their diffs, then the summary.
pub fn human(report: &Report) -> String {
    let mut out = String::new();
    for e in &report.errors {
        out.push_str(&format!("error: {e}\n"));
    }
    for v in &report.vectors {
        for (p, r) in &v.results {
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
    out
}
