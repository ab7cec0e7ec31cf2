//! Wiring shared by the `dmaconf` binary and its test harness: where the suite lives and
//! which implementations can be named on the command line.

use std::path::{Path, PathBuf};

use dmaconf_engine::Implementation;

/// The repository root: the nearest ancestor of the current directory holding `spec/` and
/// `vectors/`, else the workspace this binary was built from.
pub fn find_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_default();
    for dir in here.ancestors() {
        if dir.join("spec").is_dir() && dir.join("vectors").is_dir() {
            return dir.to_path_buf();
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Linux-faithful Rust reference.
pub fn reference() -> Implementation {
    Implementation::new(
        "reference",
        &["iova_api", "streaming", "linux_exact"],
        || Box::new(dmaconf_reference::Reference::new()),
    )
}

/// Resolves `--impl NAME`.
pub fn implementation(name: &str) -> Result<Implementation, String> {
    match name {
        "reference" => Ok(reference()),
        other => Err(format!(
            "unknown implementation `{other}` (available: reference; the C, Python and kernel doors come later)"
        )),
    }
}
