//! Running a selection of the suite and reporting it. One module per output format:
//! `human` (terminal), `json` (one document, or JSON lines streamed as vectors finish, and the
//! schema both follow), `junit` (for CI test views), `results` (the canonical snapshot a user
//! commits), `diff` (two snapshots compared), `expectations` (the baseline of known failures),
//! `html` (the static report with the matrix and timelines).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use crate::compare::{judge, Profile, ResultClass, Verdict};
use crate::door::Door;
use crate::exec::Execution;
use crate::load::{Loaded, Suite};

pub mod diff;
pub mod expectations;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod results;

pub use expectations::{Baseline, Waiver};
pub use human::human;

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

/// One vector's results (one line of `--json-lines`, one element of the JSON report's
/// `vectors`).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct VectorReport {
    pub id: String,
    /// The vector's file, as the suite was loaded (relative when `--root` is).
    pub file: PathBuf,
    /// First line of the vector's document in `file`.
    pub line: u64,
    pub area: String,
    pub rules: Vec<String>,
    /// The platform presets the vector ran on (empty when it did not run).
    #[serde(default)]
    pub presets: Vec<String>,
    /// The result class per profile, with its reason and mismatches.
    pub results: BTreeMap<Profile, Verdict>,
    /// Expectations-file entries that turned a result into `waived`, per profile.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub waived: BTreeMap<Profile, Waiver>,
    /// Problems with this vector's expectations-file entries (a stale or wrong entry); each
    /// makes the run red.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The full trace (absent with `--no-trace`, or when the vector did not run).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<json::TraceSchema>")]
    pub trace: Option<Execution>,
    /// Wall time of executing and judging the vector (not in the results snapshot).
    #[serde(skip)]
    pub elapsed: Duration,
}

impl VectorReport {
    /// Whether this vector keeps the run green.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.results.values().all(|r| r.class.is_ok())
    }
}

/// A whole run.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Report {
    pub implementation: String,
    pub profiles: Vec<Profile>,
    /// Per profile, how many vectors got each class.
    pub summary: BTreeMap<Profile, BTreeMap<ResultClass, usize>>,
    pub vectors: Vec<VectorReport>,
    /// Problems outside any one vector (bad presets, unreadable files, expectations naming an
    /// unknown vector).
    pub errors: Vec<String>,
}

impl Report {
    /// Exit status 0 only when nothing failed, crashed, timed out or could not run, and the
    /// expectations file (if any) is current.
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.vectors.iter().all(VectorReport::ok)
    }
}

/// Executes one loaded vector once and judges it under each profile.
pub fn run_one(
    loaded: &Loaded,
    suite: &Suite,
    door: &dyn Door,
    profiles: &[Profile],
) -> VectorReport {
    let started = Instant::now();
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
        presets: trace
            .as_ref()
            .map(|t: &Execution| t.runs.iter().map(|r| r.preset.clone()).collect())
            .unwrap_or_default(),
        results,
        waived: BTreeMap::new(),
        errors: Vec::new(),
        trace,
        elapsed: started.elapsed(),
    }
}

/// Runs every selected vector. `progress` is called after each vector (for a progress bar).
pub fn run_suite(
    suite: &Suite,
    door: &dyn Door,
    profiles: &[Profile],
    filter: &Filter,
    progress: impl FnMut(&VectorReport),
) -> Result<Report, String> {
    run_suite_with(suite, door, profiles, filter, None, progress)
}

/// Like [`run_suite`], judging each vector against an expectations file as well: `progress`
/// sees each vector with its waivers applied, so a streamed line says `waived` too.
pub fn run_suite_with(
    suite: &Suite,
    door: &dyn Door,
    profiles: &[Profile],
    filter: &Filter,
    baseline: Option<&Baseline>,
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
        let mut r = run_one(loaded, suite, door, profiles);
        if let Some(b) = baseline {
            b.apply(&mut r);
        }
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
    let mut errors: Vec<String> = suite.errors.iter().map(|e| e.to_string()).collect();
    if let Some(b) = baseline {
        errors.extend(b.unknown_ids(suite));
    }
    Ok(Report {
        implementation: door.name(),
        profiles: profiles.to_vec(),
        summary,
        vectors,
        errors,
    })
}
