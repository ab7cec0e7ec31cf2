//! `run --results` and `dmaconf diff` through the binary: the snapshot is byte-identical across
//! runs and free of paths, a regression makes `diff` exit 1, an improvement alone exits 0.

mod common;
use common::{broken_free, dmaconf, suite, text};

#[test]
fn snapshot_is_canonical_and_diff_finds_the_regression() {
    let good = suite(&["free/free.yaml", "destroy/destroy.yaml"], |_, t| t);
    let g = good.path();
    for (i, args) in [vec![], vec!["--results-trace"]].iter().enumerate() {
        let first = format!("first{i}.json");
        let second = format!("second{i}.json");
        let mut a = vec!["run", "--results", &first];
        a.extend(args.iter().copied());
        assert!(dmaconf(g, &a).status.success());
        let mut b = vec![
            "run",
            "--results",
            &second,
            "--profile",
            "linux",
            "--profile",
            "semantic",
        ];
        b.extend(args.iter().copied());
        assert!(dmaconf(g, &b).status.success());
        let one = std::fs::read_to_string(g.join(&first)).unwrap();
        let two = std::fs::read_to_string(g.join(&second)).unwrap();
        assert_eq!(one, two, "two runs give the same bytes");
        assert!(!one.contains(&*g.to_string_lossy()), "no absolute path");
        assert!(!one.contains("free.yaml"), "no file names");
        let ids: Vec<&str> = one
            .lines()
            .filter_map(|l| l.trim().strip_prefix("\"id\": \""))
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.len() > 4);
        assert_eq!(one.contains("\"trace\": {"), i == 1);
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(common::repo().join("spec/results.schema.json")).unwrap(),
        )
        .unwrap();
        let doc: serde_json::Value = serde_json::from_str(&one).unwrap();
        assert!(jsonschema::validator_for(&schema).unwrap().is_valid(&doc));
    }

    let bad = suite(&["free/free.yaml", "destroy/destroy.yaml"], |f, t| {
        if f.starts_with("free") {
            broken_free(f, t)
        } else {
            t
        }
    });
    let b = bad.path();
    assert!(!dmaconf(b, &["run", "--results", "new.json"])
        .status
        .success());
    let old = g.join("first0.json");
    let new = b.join("new.json");
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let worse = dmaconf(g, &["diff", o, n]);
    assert_eq!(worse.status.code(), Some(1), "{}", text(&worse));
    assert_eq!(
        String::from_utf8_lossy(&worse.stdout),
        "REGRESSION linux::free-no-effects-state-kept: pass -> fail\n1 regression(s), 0 improvement(s), 0 other change(s)\n"
    );
    let better = dmaconf(g, &["diff", n, o]);
    assert_eq!(better.status.code(), Some(0), "{}", text(&better));
    assert!(
        text(&better).ends_with("no regression: 1 improvement(s), 0 other change(s)\n"),
        "{}",
        text(&better)
    );
    let same = dmaconf(g, &["diff", o, o]);
    assert_eq!(
        (same.status.code(), text(&same)),
        (Some(0), "nothing changed\n".to_string())
    );

    std::fs::write(g.join("broken.json"), "{\"format\": 1,\n \"vectors\": 3}").unwrap();
    let e = dmaconf(g, &["diff", "broken.json", o]);
    assert_eq!(e.status.code(), Some(2));
    assert!(text(&e).contains("broken.json:2:"), "{}", text(&e));
}
