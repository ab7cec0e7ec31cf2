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
