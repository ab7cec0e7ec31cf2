//! The suite's vector trials as a test of this crate, for mutation testing (issue 20,
//! `.cargo/mutants.toml`): cargo-mutants tests a mutant of a crate with that crate's own test
//! targets, so the suite must be one of them for a mutant to be judged by the vectors. The
//! machine runs this same file as its `vectors` test (`runner/machine/Cargo.toml`).
//!
//! Only the vectors' expectations judge: no trace snapshot is compared here. The reference is
//! the one declared by the CLI (`dmaconf::reference()`), rebuilt from the mutated sources.

use std::path::Path;

use dmaconf_engine::report::{run_suite, Filter};
use dmaconf_engine::{load_suite, Implementation, Profile};

#[test]
fn the_reference_passes_every_vector() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    assert!(
        suite.errors.is_empty(),
        "the suite loads: {:?}",
        suite.errors
    );
    let reference = Implementation::new(
        "reference",
        &["iova_api", "streaming", "sg", "linux_exact"],
        || Box::new(dmaconf_reference::Reference::new()),
    );
    let report = run_suite(
        &suite,
        &reference,
        &Profile::ALL,
        &Filter::default(),
        |_| {},
    )
    .expect("the suite runs");
    let red: Vec<String> = report
        .vectors
        .iter()
        .flat_map(|v| {
            v.results
                .iter()
                .filter(|(_, r)| !r.class.is_ok())
                .map(move |(p, r)| format!("{}::{}: {}", p.name(), v.id, r.class.name()))
        })
        .collect();
    assert!(red.is_empty(), "{} red: {red:#?}", red.len());
}
