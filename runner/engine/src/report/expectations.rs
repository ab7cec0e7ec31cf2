//! The expectations file (a baseline of known failures, `--expectations FILE`): each entry names
//! a vector, a profile, the class it is known to get and why. A listed vector that still gets
//! that class is `waived`; one that gets anything else, and an entry naming no vector of the
//! suite, are errors naming the entry's file:line, so the baseline can never go stale silently
//! (deqp-runner's `failures.csv` and the Vulkan CTS waivers, with reasons made mandatory).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Report, VectorReport};
use crate::compare::{Profile, ResultClass};
use crate::load::Suite;
use crate::yaml::{self, At, Located};

/// The version of the expectations format this engine reads.
pub const FORMAT: u32 = 1;

/// The reason `--emit-expectations` writes; a file still holding it does not load, so every
/// waiver in a committed baseline says why.
pub const REASON_PLACEHOLDER: &str = "TODO: why";

/// The classes an entry may expect (never `pass`, never `waived`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    Fail,
    Crash,
    Timeout,
    NotSupported,
    HarnessError,
    Misuse,
}

impl Expected {
    pub fn class(self) -> ResultClass {
        match self {
            Expected::Fail => ResultClass::Fail,
            Expected::Crash => ResultClass::Crash,
            Expected::Timeout => ResultClass::Timeout,
            Expected::NotSupported => ResultClass::NotSupported,
            Expected::HarnessError => ResultClass::HarnessError,
            Expected::Misuse => ResultClass::Misuse,
        }
    }
    fn of(class: ResultClass) -> Option<Expected> {
        Some(match class {
            ResultClass::Fail => Expected::Fail,
            ResultClass::Crash => Expected::Crash,
            ResultClass::Timeout => Expected::Timeout,
            ResultClass::NotSupported => Expected::NotSupported,
            ResultClass::HarnessError => Expected::HarnessError,
            ResultClass::Misuse => Expected::Misuse,
            ResultClass::Pass | ResultClass::Waived => return None,
        })
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileFormat<E> {
    format: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    implementation: Option<String>,
    expectations: Vec<E>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    profile: Profile,
    result: Expected,
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

/// One entry of an expectations file, with where it is.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Waiver {
    pub id: String,
    pub profile: Profile,
    /// The class the entry expects.
    pub result: ResultClass,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// `FILE:LINE` of the entry.
    pub at: String,
}

/// A loaded expectations file.
#[derive(Clone, Debug)]
pub struct Baseline {
    pub file: PathBuf,
    pub implementation: Option<String>,
    entries: BTreeMap<(String, Profile), Waiver>,
}

impl Baseline {
    /// Reads and checks an expectations file. Every problem names file:line:column.
    pub fn load(file: &Path) -> Result<Baseline, Vec<Located>> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| vec![Located::new(file, 1, 1, format!("cannot read: {e}"))])?;
        Baseline::parse(file, &text)
    }

    /// Parses the text of an expectations file.
    pub fn parse(file: &Path, text: &str) -> Result<Baseline, Vec<Located>> {
        let doc: FileFormat<At<Entry>> = yaml::parse_file(file, text).map_err(|e| vec![e])?;
        let mut errors = Vec::new();
        if doc.format != FORMAT {
            errors.push(Located::new(
                file,
                1,
                1,
                format!(
                    "expectations format {} is not supported (this dmaconf reads {FORMAT})",
                    doc.format
                ),
            ));
        }
        let mut entries = BTreeMap::new();
        for At {
            value: e,
            line,
            column,
        } in doc.expectations
        {
            let at = format!("{}:{line}", file.display());
            let reason = e.reason.trim();
            if reason.is_empty() || reason.starts_with("TODO") {
                errors.push(Located::new(
                    file,
                    line,
                    column,
                    format!(
                        "{} ({}): the reason is not filled in; say why this result is expected",
                        e.id,
                        e.profile.name()
                    ),
                ));
            }
            let waiver = Waiver {
                id: e.id.clone(),
                profile: e.profile,
                result: e.result.class(),
                reason: e.reason,
                link: e.link,
                at,
            };
            if let Some(first) = entries.insert((e.id.clone(), e.profile), waiver) {
                errors.push(Located::new(
                    file,
                    line,
                    column,
                    format!(
                        "{} ({}) is listed twice (first at {})",
                        e.id,
                        e.profile.name(),
                        first.at
                    ),
                ));
            }
        }
        if errors.is_empty() {
            Ok(Baseline {
                file: file.to_path_buf(),
                implementation: doc.implementation,
                entries,
            })
        } else {
            Err(errors)
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries naming a vector the suite does not have (checked against the whole suite, so a
    /// `--filter` does not make entries unknown).
    pub fn unknown_ids(&self, suite: &Suite) -> Vec<String> {
        let known: BTreeSet<&str> = suite.vectors.iter().map(|l| l.id.as_str()).collect();
        self.entries
            .values()
            .filter(|w| !known.contains(w.id.as_str()))
            .map(|w| {
                format!(
                    "{}: unknown vector `{}`: no vector of the suite has this id",
                    w.at, w.id
                )
            })
            .collect()
    }

    /// Applies the entries for this vector: a matching failure becomes `waived`; a listed
    /// vector that passes (stale) or gets another class is an error on the vector.
    pub fn apply(&self, v: &mut VectorReport) {
        for (profile, verdict) in v.results.iter_mut() {
            let Some(w) = self.entries.get(&(v.id.clone(), *profile)) else {
                continue;
            };
            if verdict.class == w.result {
                if !verdict.class.is_ok() {
                    verdict.class = ResultClass::Waived;
                    v.waived.insert(*profile, w.clone());
                }
            } else if verdict.class == ResultClass::Pass {
                v.errors.push(format!(
                    "{}: stale expectation: {} ({}) is listed as {} but passes; remove the entry",
                    w.at,
                    w.id,
                    profile.name(),
                    w.result.name()
                ));
            } else {
                v.errors.push(format!(
                    "{}: {} ({}) is listed as {} but is {}; update the entry",
                    w.at,
                    w.id,
                    profile.name(),
                    w.result.name(),
                    verdict.class.name()
                ));
            }
        }
    }
}

/// The expectations file for the current failures (every red result, and every waived one with
/// its reason kept), sorted by id and profile. New entries carry [`REASON_PLACEHOLDER`].
pub fn emit(report: &Report) -> Result<String, String> {
    let mut entries = Vec::new();
    for v in &report.vectors {
        for (p, r) in &v.results {
            let entry = if let Some(w) = v.waived.get(p) {
                Entry {
                    id: v.id.clone(),
                    profile: *p,
                    result: Expected::of(w.result).ok_or("a waiver expects pass")?,
                    reason: w.reason.clone(),
                    link: w.link.clone(),
                }
            } else if !r.class.is_ok() {
                Entry {
                    id: v.id.clone(),
                    profile: *p,
                    result: Expected::of(r.class).ok_or("a red class has no entry")?,
                    reason: REASON_PLACEHOLDER.to_string(),
                    link: None,
                }
            } else {
                continue;
            };
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| (&a.id, a.profile).cmp(&(&b.id, b.profile)));
    let body = yaml::to_yaml(&FileFormat {
        format: FORMAT,
        implementation: Some(report.implementation.clone()),
        expectations: entries,
    })?;
    Ok(format!(
        "# dmaconf expectations (baseline of known failures), written by --emit-expectations.\n\
         # Replace every \"{REASON_PLACEHOLDER}\" with the reason (the file does not load until you do);\n\
         # `link:` may point at a bug report. Use it with `dmaconf run --expectations FILE`.\n{body}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Verdict;

    fn vector(id: &str, class: ResultClass) -> VectorReport {
        VectorReport {
            id: id.into(),
            file: "v.yaml".into(),
            line: 1,
            area: "a".into(),
            rules: vec![],
            presets: vec![],
            results: [(Profile::Linux, Verdict::of(class, "r"))].into(),
            waived: BTreeMap::new(),
            errors: vec![],
            trace: None,
            elapsed: Default::default(),
        }
    }

    const FILE: &str = "format: 1\nimplementation: c-example\nexpectations:\n  - id: a\n    profile: linux\n    result: fail\n    reason: \"first-fit allocator\"\n  - id: b\n    profile: linux\n    result: crash\n    reason: known\n    link: https://example.org/1\n";

    #[test]
    fn a_listed_failure_is_waived_and_a_pass_is_stale() {
        let b = Baseline::parse(Path::new("e.yaml"), FILE).unwrap();
        let mut a = vector("a", ResultClass::Fail);
        b.apply(&mut a);
        assert_eq!(a.results[&Profile::Linux].class, ResultClass::Waived);
        assert!(a.ok());
        let mut stale = vector("a", ResultClass::Pass);
        b.apply(&mut stale);
        assert!(!stale.ok());
        assert_eq!(
            stale.errors,
            ["e.yaml:4: stale expectation: a (linux) is listed as fail but passes; remove the entry"]
        );
        let mut other = vector("b", ResultClass::Fail);
        b.apply(&mut other);
        assert_eq!(other.results[&Profile::Linux].class, ResultClass::Fail);
        assert!(other.errors[0].starts_with("e.yaml:8: b (linux) is listed as crash but is fail"));
    }

    #[test]
    fn bad_files_name_the_entry() {
        let todo = FILE.replace("\"first-fit allocator\"", "\"TODO: why\"");
        let e = Baseline::parse(Path::new("e.yaml"), &todo).unwrap_err();
        assert_eq!((e[0].line, e[0].column), (4, 5), "{e:?}");
        let twice =
            format!("{FILE}  - id: a\n    profile: linux\n    result: fail\n    reason: x\n");
        let e = Baseline::parse(Path::new("e.yaml"), &twice).unwrap_err();
        assert!(
            e[0].to_string()
                .starts_with("e.yaml:13:5: a (linux) is listed twice (first at e.yaml:4)"),
            "{e:?}"
        );
        let bad = FILE.replace("result: crash", "result: pass");
        let e = Baseline::parse(Path::new("e.yaml"), &bad).unwrap_err();
        assert_eq!(e[0].line, 10, "{e:?}");
    }
}
