//! Wiring shared by the `dmaconf` binary and its test harness: where the suite lives and
//! which implementations can be named on the command line.
#![forbid(unsafe_code)]

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
            "unknown implementation `{other}` (available: reference, kernel:qemu, wire:COMMAND; the C and Python doors come later)"
        )),
    }
}

/// The kernel door: Linux 7.3.4 under QEMU, packages from `ROOT/../shared/kernel-7.3.4`.
pub fn kernel_door(root: &Path) -> dmaconf_kernel::KernelDoor {
    dmaconf_kernel::KernelDoor::new(root)
}

/// How a door drives an implementation outside the runner.
#[derive(Clone, Copy, Debug)]
pub struct DoorOptions {
    /// The time limit of one vector on one preset (a device's life) through the wire.
    pub timeout: Duration,
}

impl Default for DoorOptions {
    fn default() -> DoorOptions {
        DoorOptions {
            timeout: Duration::from_secs(10),
        }
    }
}

/// Resolves `--impl NAME` to a door: `reference` (in process), `kernel:qemu`, or
/// `wire:COMMAND` (any child command speaking the wire, `spec/9-wire.md`; split like a shell
/// line).
pub fn door(name: &str, root: &Path, options: DoorOptions) -> Result<Box<dyn Door>, String> {
    if let Some(command) = name.strip_prefix("wire:") {
        let argv = shlex::split(command)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("`--impl {name}`: cannot split `{command}` into a command"))?;
        let wire = dmaconf_wire::Wire::start(&argv, options.timeout)?;
        return Ok(Box::new(wire.implementation()));
    }
    match name {
        "kernel:qemu" => Ok(Box::new(kernel_door(root))),
        other => implementation(other).map(|i| Box::new(i) as Box<dyn Door>),
    }
}

/// `dmaconf serve --impl NAME`: serves an in-process implementation over stdin and stdout.
pub fn serve_stdio(name: &str) -> Result<(), String> {
    let implementation = implementation(name)?;
    let make = || implementation.instance();
    let served = dmaconf_wire::Served {
        name: &implementation.name,
        version: env!("CARGO_PKG_VERSION"),
        capabilities: &implementation.capabilities,
        make: &make,
    };
    let stdin = std::io::stdin().lock();
    let stdout = BufWriter::new(std::io::stdout().lock());
    dmaconf_wire::serve(stdin, stdout, &served).map_err(|e| format!("serve: {e}"))
}

/// Parses a time limit: `10s`, `500ms`, `2m`, `1.5s` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 10s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        other => return Err(format!("`{text}`: unknown unit `{other}` (ms, s, m)")),
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{text}` is not a positive duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("3h").unwrap_err().contains("unknown unit"));
    }
}
