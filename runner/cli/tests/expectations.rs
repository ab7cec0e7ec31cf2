//! `--expectations` and `--emit-expectations` through the binary: a known failure is waived, a
//! stale entry and an unknown id turn the run red naming the entry's line, an unfilled reason
//! does not load.

mod common;
use common::{broken_free, dmaconf, suite, text};

#[test]
fn baseline_waives_and_goes_stale() {
    let root = suite(&["free/free.yaml"], broken_free);
    let r = root.path();
    let red = dmaconf(r, &["run"]);
    assert_eq!(red.status.code(), Some(1), "{}", text(&red));

    let emitted = dmaconf(r, &["run", "--emit-expectations", "e.yaml"]);
    assert_eq!(emitted.status.code(), Some(1), "{}", text(&emitted));
    let e = std::fs::read_to_string(r.join("e.yaml")).unwrap();
    assert!(e.contains("- id: free-no-effects-state-kept\n  profile: linux\n  result: fail\n  reason: \"TODO: why\"\n"), "{e}");
    assert_eq!(e.matches("- id:").count(), 1, "{e}");

    // The placeholder must be replaced before the file is used.
    let todo = dmaconf(r, &["run", "--expectations", "e.yaml"]);
    assert_eq!(todo.status.code(), Some(2), "{}", text(&todo));
    assert!(
        text(&todo).contains(
            "e.yaml:7:3: free-no-effects-state-kept (linux): the reason is not filled in"
        ),
        "{}",
        text(&todo)
    );

    std::fs::write(
        r.join("e.yaml"),
        e.replace("TODO: why", "test fixture: wrong address"),
    )
    .unwrap();
    let waived = dmaconf(
        r,
        &["run", "--expectations", "e.yaml", "--results", "after.json"],
    );
    assert_eq!(waived.status.code(), Some(0), "{}", text(&waived));
    // The snapshot records what the implementation did: the same bytes with or without the
    // waiver, so committing the first snapshot keeps the CI job's `git diff` clean.
    let plain = dmaconf(r, &["run", "--results", "before.json"]);
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain));
    let before = std::fs::read_to_string(r.join("before.json")).unwrap();
    assert_eq!(
        before,
        std::fs::read_to_string(r.join("after.json")).unwrap()
    );
    assert!(before.contains("\"linux\": \"fail\""), "{before}");
    assert!(
        text(&waived).contains("linux:    1 pass, 0 fail, 1 waived"),
        "{}",
        text(&waived)
    );

    // Fixed vector: the entry is stale, the run red, the message names the entry's line.
    let fixed = suite(&["free/free.yaml"], |_, t| t);
    std::fs::copy(r.join("e.yaml"), fixed.path().join("e.yaml")).unwrap();
    let stale = dmaconf(fixed.path(), &["run", "--expectations", "e.yaml"]);
    assert_eq!(stale.status.code(), Some(1), "{}", text(&stale));
    assert!(text(&stale).contains("e.yaml:7: stale expectation: free-no-effects-state-kept (linux) is listed as fail but passes"), "{}", text(&stale));
}

#[test]
fn unknown_id_is_red() {
    let root = suite(&["free/free.yaml"], |_, t| t);
    let r = root.path();
    std::fs::write(
        r.join("e.yaml"),
        "format: 1\nexpectations:\n  - id: free-no-such-vector\n    profile: semantic\n    result: crash\n    reason: renamed?\n",
    )
    .unwrap();
    let o = dmaconf(
        r,
        &[
            "run",
            "--filter",
            "free-whole-*",
            "--expectations",
            "e.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("e.yaml:3: unknown vector `free-no-such-vector`"),
        "{}",
        text(&o)
    );
    let bad = "format: 1\nexpectations:\n  - id: x\n    profile: semantic\n    result: passed\n    reason: r\n";
    std::fs::write(r.join("e.yaml"), bad).unwrap();
    let o = dmaconf(r, &["run", "--expectations", "e.yaml"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("e.yaml:5:13: "), "{}", text(&o));
}
