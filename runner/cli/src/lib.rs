//! Wiring shared by the `dmaconf` binary and its test harness: where the suite lives and
//! which implementations can be named on the command line.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use dmaconf_engine::{Door, Implementation};

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
        &["iova_api", "streaming", "sg", "linux_exact"],
        || Box::new(dmaconf_reference::Reference::new()),
    )
}

/// Resolves `--impl NAME` to an in-process implementation.
pub fn implementation(name: &str) -> Result<Implementation, String> {
    match name {
        "reference" => Ok(reference()),
        other => Err(format!(
            "unknown implementation `{other}` (available: reference, kernel:qemu; the C and Python doors come later)"
        )),
    }
}

/// The kernel door: Linux 7.3.4 under QEMU, packages from `ROOT/../shared/kernel-7.3.4`.
pub fn kernel_door(root: &Path) -> dmaconf_kernel::KernelDoor {
    dmaconf_kernel::KernelDoor::new(root)
}

/// Resolves `--impl NAME` to a door: `reference` (in process) or `kernel:qemu`.
pub fn door(name: &str, root: &Path) -> Result<Box<dyn Door>, String> {
    door_checked(name, root, true)
}

/// `door`, with the misuse checker on or off for in-process implementations
/// (spec/10-misuse-checker.md, "On by default").
pub fn door_checked(name: &str, root: &Path, check: bool) -> Result<Box<dyn Door>, String> {
    match name {
        "kernel:qemu" => Ok(Box::new(kernel_door(root))),
        other => implementation(other).map(|mut i| {
            i.check = check;
            Box::new(i) as Box<dyn Door>
        }),
    }
}
