//! `ffi/c/include/dmaconf.h` is cbindgen's output for `src/lib.rs`, byte for byte. Run with
//! `DMACONF_BLESS=1` to rewrite the committed header after an intended ABI change.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("ffi/c/abi/cbindgen.toml parses");
    let mut fresh = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut fresh);
    let fresh = String::from_utf8(fresh).expect("cbindgen writes UTF-8");
    let path = crate_dir.join("../include/dmaconf.h");
    if std::env::var_os("DMACONF_BLESS").is_some() {
        std::fs::write(&path, &fresh).expect("write ffi/c/include/dmaconf.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != fresh {
        let diff = similar::TextDiff::from_lines(&committed, &fresh);
        panic!(
            "ffi/c/include/dmaconf.h is stale (regenerate with DMACONF_BLESS=1 cargo test -p dmaconf-c-abi --test header):\n{}",
            diff.unified_diff().header("committed", "cbindgen")
        );
    }
}
