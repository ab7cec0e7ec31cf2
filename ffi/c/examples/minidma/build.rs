//! Builds minidma the way its Makefile does, so that `cargo build`/`cargo test` (and CI)
//! get the plug-in without a separate step: `libminidma.so` as C99 with `-pedantic`, the
//! same sources as C++ (a compile check), and the fake-host unit test binary. All three
//! use `-Wall -Wextra -Werror`. Paths reach the crate as `MINIDMA_*` environment values.

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCES: [&str; 3] = ["minidma.c", "iova.c", "sg.c"];
const HEADERS: [&str; 2] = ["minidma.h", "../../include/dmaconf.h"];
const WARN: [&str; 3] = ["-Wall", "-Wextra", "-Werror"];

fn run(mut cmd: Command, what: &str) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("minidma: cannot run the compiler for {what}: {e}"));
    assert!(
        status.success(),
        "minidma: building {what} failed ({status})"
    );
}

/// The compiler `cc` picks for this target, with `lang` flags, the warnings and includes.
fn compiler(cpp: bool, dir: &Path, lang: &[&str]) -> Command {
    let tool = cc::Build::new()
        .cpp(cpp)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler();
    let mut cmd = tool.to_command();
    cmd.args(lang).args(WARN).arg("-O2");
    cmd.arg("-I")
        .arg(dir.join("../../include"))
        .arg("-I")
        .arg(dir);
    cmd
}

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    for f in SOURCES
        .iter()
        .chain(HEADERS.iter())
        .chain(["test.c"].iter())
    {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    let sources: Vec<PathBuf> = SOURCES.iter().map(|s| dir.join(s)).collect();
    let shared = ["-fPIC", "-shared", "-fvisibility=hidden"];

    let so = out.join("libminidma.so");
    let mut c = compiler(false, &dir, &["-std=c99", "-pedantic"]);
    c.args(shared).arg("-o").arg(&so).args(&sources);
    run(c, "libminidma.so (C99)");

    let so_cxx = out.join("libminidma-cxx.so");
    let mut cxx = compiler(true, &dir, &["-x", "c++"]);
    cxx.args(shared).arg("-o").arg(&so_cxx).args(&sources);
    run(cxx, "libminidma-cxx.so (C++)");

    let test = out.join("minidma-test");
    let mut t = compiler(false, &dir, &["-std=c99", "-pedantic"]);
    t.arg("-o")
        .arg(&test)
        .arg(dir.join("test.c"))
        .args(&sources);
    run(t, "minidma-test");

    println!("cargo:rustc-env=MINIDMA_SO={}", so.display());
    println!("cargo:rustc-env=MINIDMA_CXX_SO={}", so_cxx.display());
    println!("cargo:rustc-env=MINIDMA_TEST={}", test.display());
}
