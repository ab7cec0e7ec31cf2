//! The structure of the common JUnit schema (Jenkins' junit-10.xsd), checked with a real XML
//! parser: `testsuites` > `testsuite` > `testcase`, required attributes, at most one outcome per
//! case, counts that add up.

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
pub fn validate(xml: &str) -> Result<Vec<(String, String, String, String)>, String> {
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
