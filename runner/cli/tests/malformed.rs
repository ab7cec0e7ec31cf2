//! Bad input is one vector's `harness_error` naming file:line:column (or the vector and step),
//! never a panic, and the other vectors of the file still run.

use std::path::{Path, PathBuf};

use dmaconf_engine::load::{load_file, Suite};
use dmaconf_engine::preset::Presets;
use dmaconf_engine::report::run_one;
use dmaconf_engine::{Profile, ResultClass};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/malformed")
        .join(name)
}

/// Loads one fixture file with the real presets; returns (id, class, reason) per vector.
fn run_fixture(name: &str) -> Vec<(String, ResultClass, String)> {
    let path = fixture(name);
    let text = std::fs::read_to_string(&path).expect("fixture exists");
    let presets_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors/presets");
    let suite = Suite {
        presets: Presets::load(&presets_dir).0,
        vectors: load_file(&path, &text),
        errors: Vec::new(),
    };
    let implementation = dmaconf::reference();
    suite
        .vectors
        .iter()
        .map(|l| {
            let r = run_one(l, &suite, &implementation, &[Profile::Semantic]);
            let v = &r.results[&Profile::Semantic];
            (r.id.clone(), v.class, v.reason.clone().unwrap_or_default())
        })
        .collect()
}

fn assert_harness_error(name: &str, id: &str, at: &str, says: &str) {
    let results = run_fixture(name);
    let (_, class, reason) = results
        .iter()
        .find(|(i, _, _)| i == id)
        .unwrap_or_else(|| panic!("{id} not reported; got {results:?}"));
    assert_eq!(*class, ResultClass::HarnessError, "{id}: {reason}");
    assert!(reason.contains(at), "{id}: `{reason}` should name `{at}`");
    assert!(
        reason.contains(says),
        "{id}: `{reason}` should say `{says}`"
    );
}

#[test]
fn bad_yaml_names_its_position_and_the_next_vector_still_runs() {
    assert_harness_error("bad-yaml.yaml", "fixture-bad-yaml", "bad-yaml.yaml:9:", "");
    let results = run_fixture("bad-yaml.yaml");
    assert!(results
        .iter()
        .any(|(i, c, _)| i == "fixture-good-after-bad-yaml" && *c == ResultClass::Pass));
}

#[test]
fn unknown_key() {
    assert_harness_error(
        "unknown-key.yaml",
        "fixture-unknown-key",
        "unknown-key.yaml:10:5",
        "unknown field `expekt`",
    );
    let results = run_fixture("unknown-key.yaml");
    assert!(results
        .iter()
        .any(|(i, c, _)| i == "fixture-good-after-unknown-key" && *c == ResultClass::Pass));
}

#[test]
fn wrong_type() {
    assert_harness_error(
        "wrong-type.yaml",
        "fixture-wrong-type",
        "wrong-type.yaml:9:",
        "",
    );
}

#[test]
fn duplicate_key() {
    assert_harness_error(
        "duplicate-key.yaml",
        "fixture-duplicate-key",
        "duplicate-key.yaml:11:",
        "duplicate",
    );
}

#[test]
fn number_out_of_range() {
    assert_harness_error(
        "out-of-range.yaml",
        "fixture-out-of-range",
        "out-of-range.yaml:9:",
        "",
    );
}

#[test]
fn two_actions_in_one_step() {
    assert_harness_error(
        "two-actions.yaml",
        "fixture-two-actions",
        "two-actions.yaml:10:",
        "exactly one action",
    );
}

#[test]
fn unsupported_format_version() {
    assert_harness_error(
        "bad-format.yaml",
        "fixture-bad-format",
        "bad-format.yaml:1:1",
        "format 2 is not supported",
    );
}

#[test]
fn runtime_errors_name_the_vector_and_what_is_wrong() {
    // Found before the vector runs (issue 15): at the step's own line and column.
    assert_harness_error(
        "runtime-errors.yaml",
        "fixture-unknown-buffer",
        "runtime-errors.yaml:9:5",
        "no buffer `nope`",
    );
    assert_harness_error(
        "runtime-errors.yaml",
        "fixture-unknown-preset",
        "no-such-machine",
        "unknown platform preset",
    );
    assert_harness_error(
        "runtime-errors.yaml",
        "fixture-absurd-read",
        "x86-vtd-q35",
        "more than one access may move",
    );
}
