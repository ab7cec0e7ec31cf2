//! minidma through the C door, in process, on every vector of the suite under both profiles:
//! every vector passes (or is a passing misuse vector, or not supported) except the ones
//! `expectations.yaml` lists for that profile, each of which must still fail (a waiver that
//! passes is stale). minidma never calls the host with arguments the host refuses.

use std::collections::BTreeSet;
use std::path::Path;

use dmaconf_engine::{judge, load_suite, Door, Profile};

/// `(id, profile)` of every entry of expectations.yaml: a flat list in the lead's format, one
/// `- id:` line and one `profile:` line per entry.
fn waived() -> BTreeSet<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("expectations.yaml");
    let text = std::fs::read_to_string(&path).expect("read expectations.yaml");
    let mut out = BTreeSet::new();
    let mut id = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(v) = line.strip_prefix("- id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("profile:") {
            let id = id.take().expect("profile: after its - id:");
            out.insert((id, v.trim().to_string()));
        }
    }
    out
}

#[test]
fn every_vector_passes_or_is_waived() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../..");
    let suite = load_suite(&root.join("vectors"));
    assert!(suite.vectors.len() > 100, "the suite loaded");
    let plugin = dmaconf_c::load(Path::new(dmaconf_minidma::LIBRARY)).expect("minidma loads");
    let imp = plugin.implementation();
    let waived = waived();
    let mut problems = Vec::new();
    let mut passed = [0usize; 2];
    for loaded in &suite.vectors {
        let Ok(vector) = &loaded.vector else {
            problems.push(format!("{}: does not load", loaded.id));
            continue;
        };
        let run = imp.execute(vector, &suite.presets);
        for (k, profile) in [Profile::Semantic, Profile::Linux].into_iter().enumerate() {
            let verdict = judge(vector, &run, profile);
            let class = format!("{:?}", verdict.class);
            let green = matches!(class.as_str(), "Pass" | "Misuse" | "NotSupported");
            let listed = waived.contains(&(loaded.id.clone(), profile.name().to_string()));
            match (green, listed) {
                (true, false) => passed[k] += 1,
                (false, true) => {}
                (true, true) => problems.push(format!(
                    "{} under {}: passes, but expectations.yaml waives it",
                    loaded.id,
                    profile.name()
                )),
                (false, false) => problems.push(format!(
                    "{} under {}: {verdict:?}",
                    loaded.id,
                    profile.name()
                )),
            }
        }
    }
    eprintln!(
        "minidma: {} vectors, semantic {} green, linux {} green",
        suite.vectors.len(),
        passed[0],
        passed[1]
    );
    let violations = plugin.take_violations();
    assert!(violations.is_empty(), "host refused calls: {violations:?}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
