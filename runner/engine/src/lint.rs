//! `dmaconf lint`: the suite checks itself. Rules and vectors must point at each other, ids must
//! be unique, every document must load, the committed JSON Schema must be current, and the
//! WARN-code table in the spec must match the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dmaconf_platform::WarnCode;

use crate::load::{self, Suite};
use crate::model::{self, Atom, Expected, StepExpect, Vector};
use crate::yaml;

/// What lint found.
#[derive(Clone, Debug, Default)]
pub struct LintReport {
    pub errors: Vec<String>,
    pub rules: usize,
    pub untested: usize,
    pub vectors: usize,
    pub files: usize,
    /// Vectors with no `derived:` block: nothing in the file says where their values come from
    /// (non-circularity, `spec/INTERPRETING.md` § "Derivation"). Reported, not an error yet.
    pub underived: Vec<String>,
}

/// Rule IDs defined in `spec/*.md`: lines `#### AREA-NN — title`, with where each is defined.
pub fn spec_rules(spec: &Path) -> Result<BTreeMap<String, String>, String> {
    let mut rules = BTreeMap::new();
    let mut files: Vec<_> = std::fs::read_dir(spec)
        .map_err(|e| format!("{}: {e}", spec.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            if let Some(id) = rule_heading(line) {
                let place = format!("{}:{}", f.display(), n + 1);
                if let Some(first) = rules.insert(id.clone(), place.clone()) {
                    return Err(format!(
                        "{place}: rule {id} is defined twice (first at {first})"
                    ));
                }
            }
        }
    }
    Ok(rules)
}

/// A vector's derivation: counted when absent; each item names at least one source, and a source
/// that is a rule ID must be one `spec/` defines.
fn check_derivation(v: &Vector, rules: &BTreeMap<String, String>, r: &mut LintReport, place: &str) {
    if v.derived.is_empty() {
        r.underived.push(v.id.clone());
    }
    for (i, d) in v.derived.iter().enumerate() {
        if d.source.iter().all(|s| s.trim().is_empty()) {
            r.errors.push(format!(
                "{place}: vector `{}`: derived item {i} names no source",
                v.id
            ));
        }
        for s in &d.source {
            if rule_id(s).is_some() && !rules.contains_key(s.trim()) {
                r.errors.push(format!(
                    "{place}: vector `{}`: derived from rule {}, which spec/ does not define",
                    v.id,
                    s.trim()
                ));
            }
        }
    }
}

/// `LINK-05` -> Some; anything else None.
fn rule_id(s: &str) -> Option<&str> {
    let s = s.trim();
    let (area, num) = s.split_once('-')?;
    (!area.is_empty()
        && area.chars().all(|c| c.is_ascii_uppercase())
        && num.len() == 2
        && num.chars().all(|c| c.is_ascii_digit()))
    .then_some(s)
}

/// `#### LINK-05 — title` -> `LINK-05`.
pub(crate) fn rule_heading(line: &str) -> Option<String> {
    let rest = line.strip_prefix("#### ")?;
    let (id, tail) = rest.split_once(' ')?;
    if !tail.starts_with("— ") {
        return None;
    }
    let (area, num) = id.split_once('-')?;
    let ok = !area.is_empty()
        && area.chars().all(|c| c.is_ascii_uppercase())
        && num.len() == 2
        && num.chars().all(|c| c.is_ascii_digit());
    ok.then(|| id.to_string())
}

/// The names in the first column (in backticks) of the table under `## SECTION` of
/// `spec/2-outcomes.md` (the WARN codes, the misuse classes).
fn spec_table_names(spec: &Path, section: &str) -> Result<BTreeSet<String>, String> {
    let f = spec.join("2-outcomes.md");
    let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
    let heading = format!("## {section}");
    let mut in_section = false;
    let mut codes = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("## ") {
            in_section = line.trim() == heading;
            continue;
        }
        if in_section && line.starts_with("| `") {
            if let Some(code) = line[3..].split('`').next() {
                codes.insert(code.to_string());
            }
        }
    }
    Ok(codes)
}

fn admits_everything(e: &Expected) -> bool {
    let set = match e {
        Expected::OneOf(v) | Expected::ImplementationDefined(v) => v,
        _ => return false,
    };
    let has = |a: Atom| set.contains(&a);
    (has(Atom::Bool(true)) && has(Atom::Bool(false)))
        || (has(Atom::Str("ok".into())) && has(Atom::Str("error".into())))
        || set
            .iter()
            .any(|a| matches!(a, Atom::Str(s) if s == "undefined"))
}

fn expectations(e: &StepExpect) -> Vec<&Expected> {
    let mut v: Vec<&Expected> = [&e.ret, &e.fault].into_iter().flatten().collect();
    if let Some(s) = &e.state {
        v.extend([&s.addr, &s.size, &s.use_swiotlb].into_iter().flatten());
    }
    for ev in e.events.iter().flatten() {
        v.extend(ev.fields.values());
    }
    v
}

fn check_grades(v: &Vector, errors: &mut Vec<String>, place: &str) {
    let mut linux_fields = 0usize;
    let mut linux_defined = 0usize;
    for step in &v.steps {
        for block in [&step.value.expect, &step.value.linux]
            .into_iter()
            .flatten()
        {
            for e in expectations(block) {
                if admits_everything(e) {
                    errors.push(format!(
                        "{place}: vector `{}`: an allowed set admits every value; use `undefined` and say why",
                        v.id
                    ));
                }
            }
        }
        if let Some(l) = &step.value.linux {
            let all = expectations(l);
            linux_fields += all.len() + usize::from(l.events.is_some());
            linux_defined += all
                .iter()
                .filter(|e| !matches!(e, Expected::Undefined))
                .count()
                + usize::from(l.events.is_some());
        }
    }
    if linux_fields > 0 && linux_defined == 0 {
        errors.push(format!(
            "{place}: vector `{}`: every linux expectation is `undefined`: the linux profile would check nothing",
            v.id
        ));
    }
}

/// The misuse checker's expectations (spec/10-misuse-checker.md): every code a vector expects
/// is a `CHECK-NN` rule the vector cites; a conforming vector expects none, and a misuse vector
/// states at least one, so the checker is tested both ways.
fn check_detected(
    v: &Vector,
    rules: &BTreeMap<String, String>,
    errors: &mut Vec<String>,
    place: &str,
) {
    let codes: Vec<&String> = v
        .steps
        .iter()
        .filter_map(|s| s.value.detected.as_ref())
        .chain(v.end.as_ref().and_then(|e| e.detected.as_ref()))
        .flatten()
        .collect();
    for c in &codes {
        if !c.starts_with("CHECK-") || !rules.contains_key(*c) {
            errors.push(format!(
                "{place}: vector `{}`: detected `{c}` is not a checker code of spec/10-misuse-checker.md",
                v.id
            ));
        } else if !v.rules.contains(c) {
            errors.push(format!(
                "{place}: vector `{}`: detected `{c}` must be among its rules",
                v.id
            ));
        }
    }
    match (&v.misuse, codes.is_empty()) {
        (None, false) => errors.push(format!(
            "{place}: vector `{}`: a conforming vector expects no checker finding; name its misuse class",
            v.id
        )),
        (Some(m), true) => errors.push(format!(
            "{place}: vector `{}`: misuse `{m}` states no `detected:` code the checker must report",
            v.id
        )),
        _ => {}
    }
}

/// Each `#### CHECK-NN` rule of the checker's chapter names its code (`` Code `name` `` first in
/// its text), and that name is the one `dmaconf-checker` reports it under.
fn checker_names(chapter: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(chapter) else {
        return vec![format!("{}: cannot be read", chapter.display())];
    };
    let mut errors = Vec::new();
    let mut current: Option<(String, usize)> = None;
    let check = |rule: &(String, usize), name: Option<&str>, errors: &mut Vec<String>| {
        let want = dmaconf_checker::Code::ALL
            .iter()
            .find(|c| c.id() == rule.0)
            .map(|c| c.name());
        if want.is_some() && name != want {
            errors.push(format!(
                "{}:{}: rule {} must name its code `{}` (Code `...` first in its text), found {:?}",
                chapter.display(),
                rule.1,
                rule.0,
                want.unwrap_or_default(),
                name
            ));
        }
    };
    for (n, line) in text.lines().enumerate() {
        if let Some(id) = rule_heading(line) {
            current = Some((id, n + 1));
            continue;
        }
        if let Some(rule) = current.take() {
            if line.trim().is_empty() {
                current = Some(rule);
                continue;
            }
            let name = line
                .strip_prefix("Code `")
                .and_then(|rest| rest.split('`').next());
            check(&rule, name, &mut errors);
        }
    }
    if let Some(rule) = current {
        check(&rule, None, &mut errors);
    }
    errors
}

/// Runs every check. `root` is the repository root (holding `spec/` and `vectors/`).
pub fn lint(root: &Path, suite: &Suite) -> LintReport {
    let mut r = LintReport::default();
    let spec = root.join("spec");
    let vectors_dir = root.join("vectors");
    r.errors.extend(suite.errors.iter().map(|e| e.to_string()));

    // Schema currency: the vector schema and the report schemas (`--format json`,
    // `--json-lines`, `--results`) are committed and current.
    let all = std::iter::once(("vector.schema.json", model::schema_json()))
        .chain(crate::report::json::schemas());
    for (name, generated) in all {
        let path = spec.join(name);
        let of = name.trim_end_matches(".schema.json");
        match std::fs::read_to_string(&path) {
            Ok(committed) if committed == generated => {}
            Ok(_) => r.errors.push(format!(
                "{}: the committed schema is out of date; run `dmaconf schema {of} > spec/{name}`",
                path.display()
            )),
            Err(e) => r.errors.push(format!("{}: {e}", path.display())),
        }
    }

    // Whether every document validates against the committed schema is a property of the
    // schema generator, checked by `cargo test` (runner/engine/tests/schema.rs); lint keeps the
    // schema current, and the loader reads every document into the types it is generated from.
    // The walk's own errors are already among `suite.errors`.
    r.files = load::vector_files(&vectors_dir).0.len();

    // Rules <-> vectors.
    let rules = match spec_rules(&spec) {
        Ok(x) => x,
        Err(e) => {
            r.errors.push(e);
            return r;
        }
    };
    r.rules = rules.len();
    let untested_path = spec.join("untested.yaml");
    let untested: BTreeMap<String, String> = match std::fs::read_to_string(&untested_path) {
        Ok(t) => yaml::parse_file(&untested_path, &t).unwrap_or_else(|e| {
            r.errors.push(e.to_string());
            BTreeMap::new()
        }),
        Err(e) => {
            r.errors.push(format!("{}: {e}", untested_path.display()));
            BTreeMap::new()
        }
    };
    r.untested = untested.len();
    let misuse_classes = spec_table_names(&spec, "Misuse classes").unwrap_or_else(|e| {
        r.errors.push(e);
        BTreeSet::new()
    });
    let mut cited: BTreeSet<String> = BTreeSet::new();
    // Duplicate ids, unknown presets and rules, undefined names: the loader refuses them (so
    // `run` does too) and they arrive here as the vector's error.
    for l in &suite.vectors {
        let place = format!("{}:{}", l.file.display(), l.line);
        r.vectors += 1;
        match &l.vector {
            Err(e) => r.errors.push(e.to_string()),
            Ok(v) => {
                for rule in &v.rules {
                    if !rules.contains_key(rule) {
                        r.errors.push(format!(
                            "{place}: vector `{}` cites rule {rule}, which spec/ does not define",
                            v.id
                        ));
                    }
                    cited.insert(rule.clone());
                }
                check_grades(v, &mut r.errors, &place);
                check_derivation(v, &rules, &mut r, &place);
                check_detected(v, &rules, &mut r.errors, &place);
                if let Some(m) = &v.misuse {
                    if !misuse_classes.contains(m) {
                        r.errors.push(format!(
                            "{place}: vector `{}`: misuse class `{m}` is not in spec/2-outcomes.md § Misuse classes",
                            v.id
                        ));
                    }
                }
            }
        }
    }
    for (rule, place) in &rules {
        match (cited.contains(rule), untested.get(rule)) {
            (false, None) => r.errors.push(format!(
                "{place}: rule {rule} has no vector and is not listed in spec/untested.yaml"
            )),
            (true, Some(_)) => r.errors.push(format!(
                "{}: rule {rule} is listed as untested but vectors cite it; remove it from the list",
                untested_path.display()
            )),
            (false, Some(reason)) if reason.trim().is_empty() => r.errors.push(format!(
                "{}: rule {rule} is listed as untested without a reason",
                untested_path.display()
            )),
            _ => {}
        }
    }
    for rule in untested.keys() {
        if !rules.contains_key(rule) {
            r.errors.push(format!(
                "{}: {rule} is listed as untested but spec/ does not define it",
                untested_path.display()
            ));
        }
    }

    // Checker codes: the spec's CHECK rules and the checker's codes are the same set (where the
    // tree has the checker's chapter).
    let has_checker_chapter = spec.join("10-misuse-checker.md").is_file();
    let spec_checks: BTreeSet<String> = rules
        .keys()
        .filter(|k| k.starts_with("CHECK-"))
        .cloned()
        .collect();
    let code_checks: BTreeSet<String> = dmaconf_checker::Code::ALL.iter().map(|c| c.id()).collect();
    if has_checker_chapter {
        r.errors
            .extend(checker_names(&spec.join("10-misuse-checker.md")));
    }
    for c in spec_checks
        .symmetric_difference(&code_checks)
        .filter(|_| has_checker_chapter)
    {
        r.errors.push(format!(
            "spec/10-misuse-checker.md: checker code {c} is in one of the spec and dmaconf-checker but not the other"
        ));
    }

    // WARN codes: the spec's table and the code's list are the same set.
    match spec_table_names(&spec, "WARN codes") {
        Ok(spec_codes) => {
            let code: BTreeSet<String> = WarnCode::ALL.iter().map(|(n, _)| n.to_string()).collect();
            for c in spec_codes.difference(&code) {
                r.errors.push(format!(
                    "spec/2-outcomes.md: WARN code `{c}` is not in WarnCode::ALL"
                ));
            }
            for c in code.difference(&spec_codes) {
                r.errors.push(format!(
                    "spec/2-outcomes.md: WarnCode `{c}` is missing from § WARN codes"
                ));
            }
        }
        Err(e) => r.errors.push(e),
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_headings() {
        assert_eq!(
            rule_heading("#### LINK-05 — one map"),
            Some("LINK-05".into())
        );
        assert_eq!(rule_heading("#### LINK-5 — x"), None);
        assert_eq!(rule_heading("### LINK-05 — x"), None);
        assert_eq!(rule_heading("#### LINK-05 x"), None);
    }

    #[test]
    fn admits_everything_is_caught() {
        let both = Expected::OneOf(vec![Atom::Bool(true), Atom::Bool(false)]);
        assert!(admits_everything(&both));
        let one = Expected::OneOf(vec![Atom::Str("-EIO".into()), Atom::Str("-EINVAL".into())]);
        assert!(!admits_everything(&one));
    }
}
