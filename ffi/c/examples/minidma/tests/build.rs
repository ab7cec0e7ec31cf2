//! The plug-in builds, exports its entry symbol with a sane table in both its C and its C++
//! build, and passes its fake-host unit test.

use std::process::Command;

#[test]
fn unit_test_against_a_fake_host_passes() {
    let out = Command::new(dmaconf_minidma::UNIT_TEST)
        .output()
        .expect("run minidma-test");
    assert!(
        out.status.success(),
        "minidma-test failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first members of `struct dmaconf_plugin`, read through the C ABI.
#[repr(C)]
struct PluginHead {
    struct_size: u32,
    abi_major: u32,
    abi_minor: u32,
    reserved: u32,
    name: *const std::os::raw::c_char,
    version: *const std::os::raw::c_char,
    capabilities: u64,
}

fn head(path: &str) -> (u32, u32, String, u64) {
    // SAFETY: the library is minidma, built by this crate's build.rs; loading it runs no
    // initialiser of its own.
    let lib = unsafe { libloading::Library::new(path) }.expect("load the plug-in");
    // SAFETY: `dmaconf_plugin_entry` has the signature of `dmaconf_plugin_entry_fn`
    // (ffi/c/include/dmaconf.h).
    let entry: libloading::Symbol<unsafe extern "C" fn() -> *const PluginHead> =
        unsafe { lib.get(b"dmaconf_plugin_entry\0") }.expect("entry symbol exported");
    // SAFETY: the entry takes no argument and returns a pointer to a static table.
    let table = unsafe { entry() };
    assert!(!table.is_null());
    // SAFETY: the table is static in the library, which stays loaded while we read it; its
    // first members have PluginHead's layout and `name` is a NUL-terminated string.
    unsafe {
        let t = &*table;
        let name = std::ffi::CStr::from_ptr(t.name)
            .to_string_lossy()
            .into_owned();
        (t.abi_major, t.struct_size, name, t.capabilities)
    }
}

#[test]
fn c_and_cxx_builds_export_the_entry_table() {
    for path in [dmaconf_minidma::LIBRARY, dmaconf_minidma::LIBRARY_CXX] {
        let (major, size, name, caps) = head(path);
        assert_eq!(major, 1, "{path}: ABI major");
        // The whole minor-0 table: 4 u32, 2 strings, the capabilities, 24 functions.
        assert_eq!(size, 16 + 8 + 8 + 8 + 24 * 8, "{path}: table size");
        assert_eq!(name, "minidma");
        assert_eq!(
            caps & 0b111,
            0b111,
            "{path}: iova_api, streaming and sg declared"
        );
    }
}
