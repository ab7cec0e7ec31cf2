//! The Python door's tests, run by `cargo test --workspace`: `scripts/dev-env.sh` builds the
//! wheel with maturin into a virtual environment under target/ (maturin and pytest from PyPI),
//! installs it, and runs pytest on the package's tests and on the example implementation
//! through the plugin. The test fails when pytest fails or collects nothing (exit status 5).

use std::path::Path;
use std::process::Command;

#[test]
fn pytest_through_the_wheel() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-env.sh");
    let status = Command::new("bash")
        .arg(&script)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "{} failed ({status}): see pytest's output above",
        script.display()
    );
}
