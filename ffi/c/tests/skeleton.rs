//! The README's C path: the skeleton plug-in of `ffi/c/examples/skeleton/mydma.c` builds with
//! the README's flags, loads, and is judged on every vector: red (it never allocates an IOVA),
//! with no crash and no harness error, so a newcomer's first run reports their code, not the door.

mod common;

use dmaconf_c::CDoor;
use dmaconf_engine::report::{run_suite, Filter};
use dmaconf_engine::{Door, Profile, ResultClass};

#[test]
fn the_readme_skeleton_runs_red_with_a_verdict_for_every_vector() {
    let so = common::compile_c(
        &common::root().join("ffi/c/examples/skeleton/mydma.c"),
        "skeleton",
        &[],
    );
    let door = CDoor::new(&so);
    assert_eq!(door.name(), "mydma");
    let suite = common::suite();
    let filter = Filter {
        ids: vec!["*".into()],
        ..Filter::default()
    };
    let report = run_suite(&suite, &door, &Profile::ALL, &filter, |_| {}).expect("valid filter");
    let count = |c: ResultClass| {
        report
            .vectors
            .iter()
            .flat_map(|v| v.results.values())
            .filter(|r| r.class == c)
            .count()
    };
    assert!(count(ResultClass::Fail) > 0, "the skeleton must not pass");
    assert_eq!(count(ResultClass::Crash), 0);
    // Vectors whose expressions need a live reservation (`s0.addr - 0x64`) cannot be judged
    // when try_alloc always fails; nothing else may be a harness error.
    for v in &report.vectors {
        for r in v.results.values() {
            if r.class == ResultClass::HarnessError {
                let reason = r.reason.as_deref().unwrap_or_default();
                assert!(
                    reason.contains("evaluates to") && reason.contains("s0.addr"),
                    "{}: {reason}",
                    v.id
                );
            }
        }
    }
}
