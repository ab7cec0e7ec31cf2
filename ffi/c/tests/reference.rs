//! The reference exported through the C ABI (`libdmaconf_reference_c.so`, loaded by the C
//! door in process) leaves exactly the trace the reference leaves in process, on every vector:
//! the whole `Execution` (every step's return, state, events, observations, the end view and
//! the fields the report leaves out), and so the same verdict under both profiles.

mod common;

use dmaconf_engine::{judge, Door, Implementation, Profile};
use dmaconf_reference::Reference;

#[test]
fn every_vector_same_trace_in_process_and_through_the_c_door() {
    let suite = common::suite();
    assert!(suite.vectors.len() > 100, "the suite loaded");
    let plugin = dmaconf_c::load(&common::reference_so()).expect("the reference plug-in loads");
    assert_eq!(plugin.name(), "reference-c");
    let in_process = Implementation::new(
        "reference",
        &["iova_api", "streaming", "sg", "linux_exact"],
        || Box::new(Reference::new()),
    );
    let through_c = plugin.implementation();
    assert_eq!(through_c.capabilities, in_process.capabilities);

    let mut compared = 0;
    let mut differ = Vec::new();
    for loaded in &suite.vectors {
        let Ok(vector) = &loaded.vector else { continue };
        assert_eq!(
            in_process.unmet(vector),
            through_c.unmet(vector),
            "{}",
            loaded.id
        );
        let a = in_process.execute(vector, &suite.presets);
        let b = through_c.execute(vector, &suite.presets);
        compared += 1;
        if format!("{a:?}") != format!("{b:?}") {
            let ja = serde_json::to_string_pretty(&a).unwrap_or_default();
            let jb = serde_json::to_string_pretty(&b).unwrap_or_default();
            let first = ja
                .lines()
                .zip(jb.lines())
                .find(|(x, y)| x != y)
                .map(|(x, y)| format!("in process: {x}\n  through C:  {y}"))
                .unwrap_or_else(|| "(only in fields the report leaves out)".into());
            differ.push(format!("{}:\n  {first}", loaded.id));
            continue;
        }
        for p in [Profile::Semantic, Profile::Linux] {
            assert_eq!(
                format!("{:?}", judge(vector, &a, p)),
                format!("{:?}", judge(vector, &b, p)),
                "{} under {}",
                loaded.id,
                p.name()
            );
        }
    }
    assert!(compared > 100, "compared {compared} vectors");
    assert!(
        differ.is_empty(),
        "{} of {compared} vectors differ:\n{}",
        differ.len(),
        differ.join("\n")
    );
    assert!(plugin.take_violations().is_empty());
}
