//! `--junit` through the binary, read back with a real XML parser and checked against the
//! structure of the common JUnit schema (Jenkins' junit-10.xsd): `testsuites` > `testsuite` >
//! `testcase`, required attributes, at most one outcome per case, counts that add up.

mod common;
use common::junit_check::validate;
use common::{broken_free, dmaconf, suite, text};

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
        xml.contains("step 4, state.addr: expected 0xffffe000, actual 0xfffff000"),
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
