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

/// Resolves `--impl NAME` to an in-process implementation: `reference`, or `c:PATH.so` (a C
/// ABI plug-in loaded into this process; a load error names the file and what is wrong).
pub fn implementation(name: &str) -> Result<Implementation, String> {
    match name {
        "reference" => Ok(reference()),
        other => match other.strip_prefix("c:") {
            Some(path) => dmaconf_c::load(Path::new(path))
                .map(|p| p.implementation())
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "unknown implementation `{other}` (available: reference, c:PATH.so, kernel:qemu)"
            )),
        },
    }
}

/// The C door in process for `--impl c:PATH.so --in-process`: a plug-in that does not load
/// gives each vector a `harness_error` naming the file and the fault, and the run goes on.
pub fn c_door_in_process(path: &Path) -> dmaconf_c::CDoor {
    dmaconf_c::CDoor::new(path)
}

/// The kernel door: Linux 7.3.4 under QEMU, packages from `ROOT/../shared/kernel-7.3.4`.
pub fn kernel_door(root: &Path) -> dmaconf_kernel::KernelDoor {
    dmaconf_kernel::KernelDoor::new(root)
}

/// Resolves `--impl NAME` to a door: `reference` (in process), `c:PATH.so` or `kernel:qemu`.
/// `c:` runs in process for now, with or without `--in-process` (the isolated wire is issue
/// 10's other half).
pub fn door(name: &str, root: &Path) -> Result<Box<dyn Door>, String> {
    match name {
        "kernel:qemu" => Ok(Box::new(kernel_door(root))),
        other => match other.strip_prefix("c:") {
            Some(path) => Ok(Box::new(c_door_in_process(Path::new(path)))),
            None => implementation(other).map(|i| Box::new(i) as Box<dyn Door>),
        },
    }
}
