//! A small suite in a temporary root, run through the real `dmaconf` binary.
#![allow(dead_code)]

pub mod junit_check;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A root with the real presets and `spec/`, and the vector files given (copied from the
/// repository's `vectors/`, then edited by `edit`).
pub fn suite(files: &[&str], edit: impl Fn(&str, String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let vectors = dir.path().join("vectors");
    std::fs::create_dir_all(vectors.join("presets")).unwrap();
    for e in std::fs::read_dir(repo().join("vectors/presets")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), vectors.join("presets").join(e.file_name())).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("spec")).unwrap();
    for e in std::fs::read_dir(repo().join("spec")).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.path().join("spec").join(e.file_name())).unwrap();
        }
    }
    for f in files {
        let text = std::fs::read_to_string(repo().join("vectors").join(f)).unwrap();
        let to = vectors.join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, edit(f, text)).unwrap();
    }
    dir
}

/// `free-no-effects-state-kept` with a wrong linux-profile address at step 3 (semantic passes).
pub fn broken_free(_: &str, text: String) -> String {
    let fixed = "    expect: {state: {size: 0x1000, use_swiotlb: false}}\n    linux: {state: {addr: 0xFFFFF000}}";
    assert!(text.contains(fixed), "the fixture vector changed");
    text.replace(
        fixed,
        "    expect: {state: {size: 0x1000, use_swiotlb: false}}\n    linux: {state: {addr: 0xFFFFE000}}",
    )
}

pub fn dmaconf(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .arg("--root")
        .arg(root)
        .args(args)
        .current_dir(root)
        .output()
        .expect("dmaconf runs")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
