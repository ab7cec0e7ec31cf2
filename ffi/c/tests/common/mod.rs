//! Shared by the C door's tests: where things are, and building C fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use dmaconf_engine::{load_suite, Suite};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn suite() -> Suite {
    load_suite(&root().join("vectors"))
}

/// `libdmaconf_reference_c.so`, which cargo builds beside this test binary (a dev-dependency
/// with a `cdylib` crate type).
pub fn reference_so() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let so = exe
        .parent()
        .expect("the test binary's directory")
        .join("libdmaconf_reference_c.so");
    assert!(
        so.is_file(),
        "{} is missing: cargo builds it as a dev-dependency of dmaconf-c",
        so.display()
    );
    so
}

/// Compiles `ffi/c/fixtures/NAME.c` (with `-D` definitions) into a shared object with the C
/// compiler the `cc` crate finds (`CC`, else `cc`), warnings as errors, and returns its path.
pub fn fixture(name: &str, defines: &[&str]) -> PathBuf {
    compile_c(
        &root().join("ffi/c/fixtures").join(format!("{name}.c")),
        name,
        defines,
    )
}

/// Compiles the C file `src` into `CARGO_TARGET_TMPDIR/c-fixtures/NAME[_DEFINES].so` (C99,
/// pedantic, warnings as errors) and returns its path.
pub fn compile_c(src: &Path, name: &str, defines: &[&str]) -> PathBuf {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-fixtures");
    std::fs::create_dir_all(&out_dir).expect("create the fixture directory");
    let tag = defines.join("_").replace(['=', '-'], "_");
    let so = out_dir.join(format!(
        "{name}{}{tag}.so",
        if tag.is_empty() { "" } else { "_" }
    ));
    let compiler = cc::Build::new()
        .opt_level(0)
        .cargo_metadata(false)
        .cargo_warnings(false)
        .target(env!("TARGET_TRIPLE"))
        .host(env!("TARGET_TRIPLE"))
        .get_compiler();
    // Built under a private name and renamed into place: a library another test has loaded is
    // never rewritten under it (a new inode replaces it).
    let tmp = so.with_extension(
        format!(
            "so.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], ""),
    );
    let mut cmd: Command = compiler.to_command();
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(["-shared", "-fPIC", "-o"])
        .arg(&tmp)
        .arg("-I")
        .arg(root().join("ffi/c/include"))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg(src);
    let out = cmd.output().expect("run the C compiler");
    assert!(
        out.status.success(),
        "compiling fixture {name}: {:?}\n{}",
        cmd,
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &so).expect("move the fixture into place");
    so
}
