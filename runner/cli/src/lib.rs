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
                "unknown implementation `{other}` (available: reference, c:PATH.so, py:pkg.mod:Class, wire:COMMAND, kernel:qemu)"
            )),
        },
    }
}

/// `--impl c:PATH.so`, isolated (the default): the plug-in is loaded by `HOST serve --impl
/// c:PATH.so` in a child process and driven over the wire, so a crash or a hang in it costs one
/// vector. A plug-in the child cannot load gives every vector a `harness_error` naming the file
/// and the fault, as the in-process door does.
pub fn c_door_isolated(host: &Path, plugin: &Path, timeout: Duration) -> Box<dyn Door> {
    let plugin = std::fs::canonicalize(plugin).unwrap_or_else(|_| plugin.to_path_buf());
    let command = [
        host.display().to_string(),
        "serve".into(),
        "--impl".into(),
        format!("c:{}", plugin.display()),
    ];
    match dmaconf_wire::Wire::start(&command, timeout) {
        Ok(wire) => Box::new(wire.implementation()),
        Err(reason) => Box::new(dmaconf_wire::Unavailable {
            name: format!("c:{}", plugin.display()),
            reason,
        }),
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
    /// `--in-process`: load a C plug-in into the runner instead of a child.
    pub in_process: bool,
    /// Run the misuse checker on the implementation's calls (spec/10-misuse-checker.md, "On by
    /// default"); `--no-check` turns it off.
    pub check: bool,
}

impl Default for DoorOptions {
    fn default() -> DoorOptions {
        DoorOptions {
            timeout: Duration::from_secs(10),
            in_process: false,
            check: true,
        }
    }
}

/// Resolves `--impl NAME` to a door: `reference` (in process), `kernel:qemu`, `c:PATH.so`
/// (isolated through the wire, or in process with `options.in_process`), `py:pkg.mod:Class`
/// (a Python class in a `dmaconf.serve` child, [`python_server`]), or `wire:COMMAND`
/// (any child command speaking the wire, `spec/9-wire.md`; split like a shell line).
pub fn door(name: &str, root: &Path, options: DoorOptions) -> Result<Box<dyn Door>, String> {
    if let Some(command) = name.strip_prefix("wire:") {
        let argv = shlex::split(command)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| format!("`--impl {name}`: cannot split `{command}` into a command"))?;
        let wire = dmaconf_wire::Wire::start(&argv, options.timeout)?;
        let mut implementation = wire.implementation();
        implementation.check = options.check;
        return Ok(Box::new(implementation));
    }
    if let Some(class) = name.strip_prefix("py:") {
        let wire = dmaconf_wire::Wire::start(&python_server(root, class), options.timeout)?;
        let mut implementation = wire.implementation();
        implementation.check = options.check;
        return Ok(Box::new(implementation));
    }
    if let Some(path) = name.strip_prefix("c:") {
        if options.in_process {
            return Ok(Box::new(dmaconf_c::CDoor::new(Path::new(path))));
        }
        let host = std::env::current_exe()
            .map_err(|e| format!("cannot find this program to host the plug-in: {e}"))?;
        return Ok(c_door_isolated(&host, Path::new(path), options.timeout));
    }
    match name {
        "kernel:qemu" => Ok(Box::new(kernel_door(root))),
        other => implementation(other).map(|mut i| {
            i.check = options.check;
            Box::new(i) as Box<dyn Door>
        }),
    }
}

/// `--impl py:pkg.mod:Class`: the Python implementation runs in a child, `python -m
/// dmaconf.serve pkg.mod:Class` (ffi/python), isolated like a C plug-in. The interpreter is
/// `$DMACONF_PYTHON` or `python3`; the `dmaconf` package comes from this checkout
/// (`ffi/python/python`, pure Python, no build needed), the class from the current directory
/// or `PYTHONPATH`.
pub fn python_server(root: &Path, class: &str) -> Vec<String> {
    let python = std::env::var("DMACONF_PYTHON").unwrap_or_else(|_| "python3".into());
    let package = root.join("ffi/python/python");
    let package = std::fs::canonicalize(&package).unwrap_or(package);
    // `-c` keeps the current directory first on sys.path, as `-m` does.
    let start = format!(
        "import sys; sys.path.insert(1, {:?}); from dmaconf.serve import main; sys.exit(main())",
        package.display().to_string()
    );
    vec![python, "-c".into(), start, class.into()]
}

/// `dmaconf serve --impl NAME`: serves an implementation over stdin and stdout. The protocol
/// moves off descriptor 1 first, so a C plug-in that prints cannot corrupt it; a C plug-in's
/// host makes no core files (its crashes are results); a plug-in that does not load is reported
/// to the runner (`unavailable`), not served.
pub fn serve_stdio(name: &str) -> Result<(), String> {
    let out = dmaconf_wire::protocol_stdout().map_err(|e| format!("serve: {e}"))?;
    if name.starts_with("c:") {
        dmaconf_wire::no_core_files().map_err(|e| format!("serve: {e}"))?;
    }
    let stdin = std::io::stdin().lock();
    let stdout = BufWriter::new(out);
    let implementation = match implementation(name) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return dmaconf_wire::refuse(stdin, stdout, &e).map_err(|e| format!("serve: {e}"));
        }
    };
    let make = || implementation.instance();
    let served = dmaconf_wire::Served {
        name: &implementation.name,
        version: env!("CARGO_PKG_VERSION"),
        capabilities: &implementation.capabilities,
        make: &make,
    };
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

/// The selection flags of `dmaconf run` as the user typed them, for an error that names them.
pub fn selection(f: &dmaconf_engine::report::Filter) -> String {
    let flags: Vec<String> = [
        ("--filter", &f.ids),
        ("--rule", &f.rules),
        ("--area", &f.areas),
    ]
    .into_iter()
    .flat_map(|(flag, values)| values.iter().map(move |v| format!("{flag} '{v}'")))
    .collect();
    if flags.is_empty() {
        "(the suite has no vectors)".into()
    } else {
        flags.join(" ")
    }
}

/// Writes to standard output through one buffered lock. A reader that went away early
/// (`dmaconf run | head`) is not a failure of the run: what is left is dropped quietly and the
/// exit status still says how the run went. Any other write error is returned.
pub fn write_stdout(
    f: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), String> {
    let mut out = BufWriter::new(std::io::stdout().lock());
    match f(&mut out).and_then(|()| std::io::Write::flush(&mut out)) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

/// `dmaconf run --fail-nth`: the sweep of every selected vector against an in-process
/// implementation (`dmaconf_engine::fail_nth`), a summary (or one JSON document) on stdout.
/// Exit 0 only when every injected failure was unwound cleanly.
pub fn fail_nth(
    root: &Path,
    name: &str,
    filter: &dmaconf_engine::report::Filter,
    json: bool,
) -> std::process::ExitCode {
    use dmaconf_engine::Door;
    use std::process::ExitCode;
    let implementation = match implementation(name) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: --fail-nth needs an in-process implementation: {e}");
            return ExitCode::from(2);
        }
    };
    let suite = dmaconf_engine::load_suite(&root.join("vectors"));
    let mut sweeps = Vec::new();
    for l in &suite.vectors {
        match filter.matches(l) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
        let Ok(v) = &l.vector else { continue };
        if implementation.unmet(v).is_empty() {
            sweeps.push(dmaconf_engine::fail_nth::sweep(
                v,
                &suite.presets,
                &implementation,
            ));
        }
    }
    if sweeps.is_empty() {
        eprintln!("error: no vector matches {}", selection(filter));
        return ExitCode::from(2);
    }
    let calls: u64 = sweeps.iter().map(|s| s.calls).sum();
    let runs: u64 = sweeps.iter().map(|s| s.runs).sum();
    let problems: usize = sweeps.iter().map(|s| s.problems.len()).sum();
    let written = write_stdout(|w| {
        if json {
            let doc = serde_json::json!({
                "implementation": name,
                "vectors": sweeps.len(),
                "fallible_calls": calls,
                "runs": runs,
                "problems": problems,
                "sweeps": sweeps,
            });
            serde_json::to_writer_pretty(&mut *w, &doc)?;
            return writeln!(w);
        }
        for s in &sweeps {
            for p in &s.problems {
                writeln!(w, "UNCLEAN {}: {p}", s.id)?;
            }
        }
        writeln!(
            w,
            "fail-nth: {} vectors, {calls} fallible platform calls, {runs} runs with one failed, {problems} unclean",
            sweeps.len()
        )
    });
    if let Err(e) = written {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
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
