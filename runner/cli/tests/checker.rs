//! The misuse checker tested both ways over the whole suite (spec/10-misuse-checker.md): it
//! reports nothing on any conforming vector, something on every misuse vector, and every code of
//! the catalogue on at least one vector. (Each vector's exact codes are judged by its own trials
//! in `tests/vectors.rs`; this test is the suite-wide count.)

use std::collections::BTreeSet;
use std::path::Path;

use dmaconf_engine::exec::{Execution, Stop};
use dmaconf_engine::{load_suite, Door};

fn findings(e: &Execution) -> BTreeSet<String> {
    e.runs
        .iter()
        .flat_map(|r| {
            r.steps
                .iter()
                .flat_map(|s| s.detected.iter())
                .chain(&r.end.detected)
        })
        .cloned()
        .collect()
}

#[test]
fn no_finding_on_conforming_vectors_and_one_on_every_misuse_vector() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    assert!(suite.errors.is_empty(), "{:?}", suite.errors);
    let reference = dmaconf::reference();
    let (mut conforming, mut misuse) = (0usize, 0usize);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut wrong = Vec::new();
    for loaded in &suite.vectors {
        let v = loaded.vector.as_ref().expect("the suite loads");
        if !reference.unmet(v).is_empty() {
            continue;
        }
        let exec = reference.execute(v, &suite.presets);
        for run in exec.runs.iter().filter(|r| r.stop == Stop::Completed) {
            assert!(run.end.checked, "{}: the checker did not run", v.id);
        }
        let found = findings(&exec);
        match &v.misuse {
            None => {
                conforming += 1;
                if !found.is_empty() {
                    wrong.push(format!("conforming {}: {found:?}", v.id));
                }
            }
            Some(class) => {
                misuse += 1;
                if found.is_empty() {
                    wrong.push(format!("misuse {} ({class}): no finding", v.id));
                }
                seen.extend(found);
            }
        }
    }
    eprintln!(
        "checker: {conforming} conforming vectors with 0 findings, {misuse} misuse vectors flagged"
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(conforming > 0 && misuse > 0);
    let all: BTreeSet<String> = dmaconf_checker::Code::ALL.iter().map(|c| c.id()).collect();
    let missing: Vec<&String> = all.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "codes no misuse vector shows: {missing:?}"
    );
}

#[test]
fn no_check_leaves_traces_unchecked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    let mut reference = dmaconf::reference();
    reference.check = false;
    let loaded = suite
        .vectors
        .iter()
        .find(|l| l.id == "misuse-free-with-live-link")
        .expect("the vector exists");
    let exec = reference.execute(loaded.vector.as_ref().expect("it loads"), &suite.presets);
    assert!(exec.runs.iter().all(|r| !r.end.checked));
    assert!(findings(&exec).is_empty());
}
