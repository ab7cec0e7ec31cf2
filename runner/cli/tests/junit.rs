//! `--junit` through the binary, read back with a real XML parser and checked against the
//! structure of the common JUnit schema (Jenkins' junit-10.xsd): `testsuites` > `testsuite` >
//! `testcase`, required attributes, at most one outcome per case, counts that add up.

mod common;
use common::{broken_free, dmaconf, suite, text};

#[derive(Debug, Default, PartialEq)]
struct Totals {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

fn count(n: roxmltree::Node, name: &str) -> Result<usize, String> {
    n.attribute(name)
        .ok_or_else(|| format!("<{}> has no `{name}`", n.tag_name().name()))?
        .parse()
        .map_err(|e| format!("<{}> {name}: {e}", n.tag_name().name()))
}

fn elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.is_element())
}

/// Checks a JUnit document; returns its cases as (suite, classname, name, outcome).
fn validate(xml: &str) -> Result<Vec<(String, String, String, String)>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let root = doc.root_element();
    if root.tag_name().name() != "testsuites" {
        return Err(format!("root is <{}>", root.tag_name().name()));
    }
    let mut all = Totals::default();
    let mut cases = Vec::new();
    for s in elements(root) {
        if s.tag_name().name() != "testsuite" {
            return Err(format!("<{}> inside <testsuites>", s.tag_name().name()));
        }
        let name = s.attribute("name").ok_or("a testsuite without name")?;
        let mut t = Totals::default();
        for c in elements(s) {
            match c.tag_name().name() {
                "testcase" => {}
                "properties" | "system-out" | "system-err" => continue,
                other => return Err(format!("<{other}> inside <testsuite>")),
            }
            let case = c.attribute("name").ok_or("a testcase without name")?;
            let class = c
                .attribute("classname")
                .ok_or("a testcase without classname")?;
            if let Some(time) = c.attribute("time") {
                time.parse::<f64>()
                    .map_err(|e| format!("time {time}: {e}"))?;
            }
            let outcomes: Vec<_> = elements(c)
                .filter(|o| ["failure", "error", "skipped"].contains(&o.tag_name().name()))
                .collect();
            if outcomes.len() > 1 {
                return Err(format!("{case}: {} outcomes", outcomes.len()));
            }
            t.tests += 1;
            let outcome = outcomes
                .first()
                .map(|o| o.tag_name().name())
                .unwrap_or("passed");
            match outcome {
                "failure" => t.failures += 1,
                "error" => t.errors += 1,
                "skipped" => t.skipped += 1,
                _ => {}
            }
            if let Some(o) = outcomes.first() {
                if o.tag_name().name() != "skipped" && o.attribute("type").is_none() {
                    return Err(format!("{case}: <{}> without type", o.tag_name().name()));
                }
                o.attribute("message")
                    .ok_or(format!("{case}: outcome without message"))?;
            }
            cases.push((
                name.to_string(),
                class.to_string(),
                case.to_string(),
                outcome.to_string(),
            ));
        }
        let said = Totals {
            tests: count(s, "tests")?,
            failures: count(s, "failures")?,
            errors: count(s, "errors")?,
            skipped: count(s, "skipped")?,
        };
        if said != t {
            return Err(format!(
                "testsuite {name}: attributes say {said:?}, cases are {t:?}"
            ));
        }
        all.tests += t.tests;
        all.failures += t.failures;
        all.errors += t.errors;
        all.skipped += t.skipped;
    }
    let said = Totals {
        tests: count(root, "tests")?,
        failures: count(root, "failures")?,
        errors: count(root, "errors")?,
        skipped: count(root, "skipped")?,
    };
    if said != all {
        return Err(format!(
            "testsuites: attributes say {said:?}, cases are {all:?}"
        ));
    }
    Ok(cases)
}

#[test]
fn junit_has_one_case_per_vector_and_profile() {
    // A failure (linux), a waived failure needs a baseline, a skipped one a capability the
    // reference lacks.
    let root = suite(&["free/free.yaml", "destroy/destroy.yaml"], |f, t| {
        if f.starts_with("free") {
            broken_free(f, t)
        } else {
            t.replacen(
                "requires: [iova_api]",
                "requires: [iova_api, c_only_feature]",
                1,
            )
        }
    });
    let r = root.path();
    let o = dmaconf(r, &["run", "--junit", "j.xml"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let xml = std::fs::read_to_string(r.join("j.xml")).unwrap();
    let cases = validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let destroy = std::fs::read_to_string(r.join("vectors/destroy/destroy.yaml")).unwrap();
    let vectors = 2 + destroy.matches("\nid: ").count();
    assert_eq!(cases.len(), 2 * vectors);
    for (suite, class, _, _) in &cases {
        assert_eq!(suite, class, "classname is the profile");
    }
    let failed: Vec<_> = cases.iter().filter(|c| c.3 == "failure").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(
        (failed[0].1.as_str(), failed[0].2.as_str()),
        ("linux", "free-no-effects-state-kept")
    );
    assert_eq!(
        cases.iter().filter(|c| c.3 == "skipped").count(),
        2 * (vectors - 2)
    );
    assert!(
        xml.contains("not_supported: requires c_only_feature"),
        "{xml}"
    );
    assert!(
        xml.contains("step 3, state.addr: expected 0xffffe000, actual 0xfffff000"),
        "{xml}"
    );

    // The same run with the failure waived: skipped with the reason, the run green.
    std::fs::write(
        r.join("e.yaml"),
        "format: 1\nexpectations:\n  - id: free-no-effects-state-kept\n    profile: linux\n    result: fail\n    reason: \"a <fixture> & its wrong address\"\n",
    )
    .unwrap();
    let o = dmaconf(r, &["run", "--junit", "j.xml", "--expectations", "e.yaml"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let xml = std::fs::read_to_string(r.join("j.xml")).unwrap();
    let cases = validate(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert!(cases.iter().all(|c| c.3 != "failure"));
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let skipped = doc
        .descendants()
        .find(|n| {
            n.has_tag_name("testcase")
                && n.attribute("name") == Some("free-no-effects-state-kept")
                && n.attribute("classname") == Some("linux")
        })
        .and_then(|n| n.children().find(|c| c.has_tag_name("skipped")))
        .expect("the waived case is skipped");
    assert!(skipped
        .attribute("message")
        .unwrap()
        .starts_with("waived (expected fail): a <fixture> & its wrong address"));
}

#[test]
fn the_checker_rejects_malformed_junit() {
    let good = "<testsuites tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\"><testsuite name=\"linux\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\"><testcase name=\"a\" classname=\"linux\"/></testsuite></testsuites>";
    assert!(validate(good).is_ok());
    assert!(
        validate(&good.replace("tests=\"1\" failures", "tests=\"2\" failures"))
            .unwrap_err()
            .contains("attributes say")
    );
    assert!(validate(&good[..good.len() - 5]).is_err(), "truncated");
    assert!(validate(&good.replace(" classname=\"linux\"", ""))
        .unwrap_err()
        .contains("classname"));
    assert!(validate(&good.replace("<testcase name=\"a\" classname=\"linux\"/>", "<testcase name=\"a\" classname=\"linux\"><failure type=\"f\" message=\"m\"/><error type=\"e\" message=\"m\"/></testcase>")).is_err());
}
