//! `dmaconf lint` must fail when either side dangles: a vector citing an undefined rule, a rule
//! with no vector and no untested entry, duplicate ids, a document the schema rejects, a stale
//! schema, an unknown misuse class. Each case is built in a scratch tree and must be reported.

use std::fs;
use std::path::{Path, PathBuf};

use dmaconf_engine::{lint, load_suite, model};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch tree with the real outcomes chapter and presets, and our own rules and vectors.
fn tree(name: &str, rules: &str, untested: &str, vectors: &str, schema: Option<&str>) -> PathBuf {
    let root = std::env::temp_dir().join(format!("dmaconf-lint-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("spec")).unwrap();
    fs::create_dir_all(root.join("vectors/presets")).unwrap();
    fs::create_dir_all(root.join("vectors/t")).unwrap();
    fs::copy(
        repo().join("spec/2-outcomes.md"),
        root.join("spec/2-outcomes.md"),
    )
    .unwrap();
    for p in fs::read_dir(repo().join("vectors/presets"))
        .unwrap()
        .flatten()
    {
        fs::copy(p.path(), root.join("vectors/presets").join(p.file_name())).unwrap();
    }
    fs::write(root.join("spec/9-test.md"), rules).unwrap();
    fs::write(root.join("spec/untested.yaml"), untested).unwrap();
    let schema = schema
        .map(str::to_string)
        .unwrap_or_else(model::schema_json);
    fs::write(root.join("spec/vector.schema.json"), schema).unwrap();
    for (name, text) in dmaconf_engine::report::json::schemas() {
        fs::write(root.join("spec").join(name), text).unwrap();
    }
    fs::write(root.join("vectors/t/t.yaml"), vectors).unwrap();
    root
}

fn errors(root: &Path) -> Vec<String> {
    let suite = load_suite(&root.join("vectors"));
    let r = lint::lint(root, &suite);
    let _ = fs::remove_dir_all(root);
    r.errors
}

const HEADER: &str = "format: 1\narea: t\ndefaults: {platform: x86-vtd-q35}\n";

fn vector(id: &str, rules: &str) -> String {
    format!(
        "---\nid: {id}\nrules: [{rules}]\nwhy: test\nsteps:\n  - dma_use_iova: {{state: s0}}\n    expect: {{ret: false}}\n"
    )
}

const RULES: &str = "#### TEST-01 — one\n\ntext\n\n#### TEST-02 — two\n\ntext\n";

fn has(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

#[test]
fn a_clean_tree_passes() {
    let v = format!(
        "{HEADER}{}{}",
        vector("a", "TEST-01"),
        vector("b", "TEST-02")
    );
    let e = errors(&tree("clean", RULES, "{}\n", &v, None));
    assert!(e.is_empty(), "{e:?}");
}

#[test]
fn undefined_rule_is_an_error() {
    let v = format!(
        "{HEADER}{}{}",
        vector("a", "TEST-01, TEST-09"),
        vector("b", "TEST-02")
    );
    let e = errors(&tree("undefined", RULES, "{}\n", &v, None));
    assert!(
        has(&e, "cites rule TEST-09, which spec/ does not define"),
        "{e:?}"
    );
}

#[test]
fn uncovered_rule_is_an_error_unless_listed_untested() {
    let v = format!("{HEADER}{}", vector("a", "TEST-01"));
    let e = errors(&tree("uncovered", RULES, "{}\n", &v, None));
    assert!(has(&e, "rule TEST-02 has no vector"), "{e:?}");
    let e = errors(&tree(
        "listed",
        RULES,
        "TEST-02: needs a model we lack\n",
        &v,
        None,
    ));
    assert!(e.is_empty(), "{e:?}");
    let both = format!("{v}{}", vector("b", "TEST-02"));
    let e = errors(&tree(
        "stale-untested",
        RULES,
        "TEST-02: reason\n",
        &both,
        None,
    ));
    assert!(has(&e, "listed as untested but vectors cite it"), "{e:?}");
}

#[test]
fn duplicate_ids_are_an_error() {
    let v = format!(
        "{HEADER}{}{}",
        vector("a", "TEST-01"),
        vector("a", "TEST-02")
    );
    let e = errors(&tree("dup", RULES, "{}\n", &v, None));
    assert!(has(&e, "vector id `a` is already used"), "{e:?}");
}

#[test]
fn a_stale_schema_is_an_error() {
    let v = format!(
        "{HEADER}{}{}",
        vector("a", "TEST-01"),
        vector("b", "TEST-02")
    );
    // A schema other than the generated one is stale. (Documents against the committed schema:
    // tests/schema.rs.)
    let e = errors(&tree("schema", RULES, "{}\n", &v, Some("{\"not\": {}}\n")));
    assert!(has(&e, "committed schema is out of date"), "{e:?}");
}

#[test]
fn unknown_misuse_class_is_an_error() {
    let v = format!(
        "{HEADER}{}{}misuse: no_such_class\n",
        vector("a", "TEST-01"),
        vector("b", "TEST-02")
    );
    let e = errors(&tree("misuse", RULES, "{}\n", &v, None));
    assert!(has(&e, "misuse class `no_such_class`"), "{e:?}");
}

#[test]
fn all_undefined_linux_expectations_are_an_error() {
    let v = format!(
        "{HEADER}{}---\nid: b\nrules: [TEST-02]\nwhy: test\nsteps:\n  - dma_use_iova: {{state: s0}}\n    linux: {{ret: undefined}}\n",
        vector("a", "TEST-01")
    );
    let e = errors(&tree("undef", RULES, "{}\n", &v, None));
    assert!(has(&e, "every linux expectation is `undefined`"), "{e:?}");
}

/// Vectors without `derived:` are counted (and listed), not errors; a derivation that names a
/// rule spec/ does not define, or no source at all, is an error.
#[test]
fn derivations_are_counted_and_checked() {
    let derived = |id: &str, source: &str| {
        format!(
            "---\nid: {id}\nrules: [TEST-01]\nwhy: test\nderived:\n  - {{by: hand, source: [{source}]}}\nsteps:\n  - dma_use_iova: {{state: s0}}\n    expect: {{ret: false}}\n"
        )
    };
    let v = format!(
        "{HEADER}{}{}{}",
        derived("a", "include/linux/dma-mapping.h:dma_use_iova"),
        vector("b", "TEST-02"),
        derived("c", "TEST-01"),
    );
    let root = tree("derived", RULES, "{}\n", &v, None);
    let suite = load_suite(&root.join("vectors"));
    let r = lint::lint(&root, &suite);
    let _ = fs::remove_dir_all(&root);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.underived, vec!["b".to_string()]);

    let bad = format!(
        "{HEADER}{}{}{}",
        derived("a", "TEST-07"),
        derived("b", "\"\""),
        vector("c", "TEST-02"),
    );
    let e = errors(&tree("derived-bad", RULES, "{}\n", &bad, None));
    assert!(has(&e, "derived from rule TEST-07"), "{e:?}");
    assert!(has(&e, "derived item 0 names no source"), "{e:?}");
}

/// A vector whose only step states `detected`, with a misuse class or none.
fn checked_vector(id: &str, rules: &str, misuse: Option<&str>, detected: Option<&str>) -> String {
    let misuse = misuse.map(|m| format!("misuse: {m}\n")).unwrap_or_default();
    let detected = detected
        .map(|d| format!("    detected: [{d}]\n"))
        .unwrap_or_default();
    format!(
        "---\nid: {id}\nrules: [{rules}]\nwhy: test\n{misuse}steps:\n  - dma_use_iova: {{state: s0}}\n{detected}"
    )
}

const CHECK_RULES: &str = "#### TEST-01 — one\n\ntext\n\n#### CHECK-01 — a code\n\ntext\n";

#[test]
fn checker_expectations_are_tested_both_ways() {
    let run = |name: &str, v: String| {
        errors(&tree(
            name,
            CHECK_RULES,
            "{}\n",
            &format!("{HEADER}{v}"),
            None,
        ))
    };
    let ok = checked_vector(
        "a",
        "TEST-01, CHECK-01",
        Some("use_after_free"),
        Some("CHECK-01"),
    );
    assert!(run("check-ok", ok).is_empty());
    let e = run(
        "check-conforming",
        checked_vector("a", "TEST-01, CHECK-01", None, Some("CHECK-01")),
    );
    assert!(
        has(&e, "a conforming vector expects no checker finding"),
        "{e:?}"
    );
    let e = run(
        "check-silent-misuse",
        format!(
            "{}{}",
            checked_vector("a", "TEST-01", Some("use_after_free"), None),
            checked_vector("b", "CHECK-01", Some("use_after_free"), Some("CHECK-01"))
        ),
    );
    assert!(has(&e, "states no `detected:` code"), "{e:?}");
    let e = run(
        "check-uncited",
        format!(
            "{}{}",
            checked_vector("a", "TEST-01", Some("use_after_free"), Some("CHECK-01")),
            checked_vector("b", "CHECK-01", Some("use_after_free"), Some("CHECK-01"))
        ),
    );
    assert!(
        has(&e, "detected `CHECK-01` must be among its rules"),
        "{e:?}"
    );
    let e = run(
        "check-unknown",
        checked_vector(
            "a",
            "TEST-01, CHECK-01",
            Some("use_after_free"),
            Some("TEST-01"),
        ),
    );
    assert!(has(&e, "is not a checker code"), "{e:?}");
}

#[test]
fn a_checker_rule_names_the_code_the_checker_reports() {
    let v = format!(
        "{HEADER}{}",
        checked_vector(
            "a",
            "TEST-01, CHECK-01",
            Some("no_reservation"),
            Some("CHECK-01")
        )
    );
    let root = tree("checker-names", CHECK_RULES, "{}\n", &v, None);
    fs::write(
        root.join("spec/10-misuse-checker.md"),
        "#### CHECK-02 — stale state\n\nCode `stale_state`. text\n",
    )
    .unwrap();
    let e = errors(&root);
    assert!(
        has(
            &e,
            "rule CHECK-02 must name its code `stub_state_not_zeroed`"
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "checker code CHECK-03 is in one of the spec"),
        "{e:?}"
    );
}

#[test]
fn stale_report_schema_is_an_error() {
    let v = format!("{HEADER}{}", vector("a", "TEST-01, TEST-02"));
    let root = tree("report-schema", RULES, "{}\n", &v, None);
    fs::write(root.join("spec/report-line.schema.json"), "{}\n").unwrap();
    let e = errors(&root);
    assert!(
        has(&e, "report-line.schema.json: the committed schema is out of date; run `dmaconf schema report-line"),
        "{e:?}"
    );
}
