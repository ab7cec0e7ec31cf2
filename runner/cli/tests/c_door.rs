//! `--impl c:PATH.so` reaches the C door: a plug-in that cannot be loaded is a harness error on
//! every vector, naming the file; the in-process implementation resolver says why it refused.
//! (The C door itself is tested in ffi/c/tests.)

use dmaconf_engine::report::{run_suite, Filter};
use dmaconf_engine::{load_suite, Profile, ResultClass};

#[test]
fn a_missing_plugin_gives_every_vector_a_harness_error_naming_it() {
    let root = dmaconf::find_root();
    let suite = load_suite(&root.join("vectors"));
    let in_process = dmaconf::DoorOptions {
        in_process: true,
        ..dmaconf::DoorOptions::default()
    };
    let door =
        dmaconf::door("c:/nonexistent/libmissing.so", &root, in_process).expect("c: is a door");
    assert_eq!(door.name(), "c:/nonexistent/libmissing.so");
    let filter = Filter {
        ids: vec!["*".into()],
        ..Filter::default()
    };
    let report = run_suite(&suite, door.as_ref(), &Profile::ALL, &filter, |_| {})
        .expect("the filter is valid");
    assert_eq!(report.vectors.len(), suite.vectors.len());
    for v in &report.vectors {
        for r in v.results.values() {
            assert_eq!(r.class, ResultClass::HarnessError, "{}", v.id);
            let reason = r.reason.as_deref().unwrap_or_default();
            assert!(
                reason.contains("/nonexistent/libmissing.so: cannot load the shared object"),
                "{}: {reason}",
                v.id
            );
        }
    }
}

#[test]
fn the_implementation_resolver_reports_a_load_error() {
    let err = dmaconf::implementation("c:/nonexistent/libmissing.so")
        .err()
        .expect("nothing to load");
    assert!(err.contains("/nonexistent/libmissing.so"), "{err}");
}
