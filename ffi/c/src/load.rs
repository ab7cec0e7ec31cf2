//! Loading and checking a plug-in (`spec/8-c-abi.md` § 8.3).

use std::ffi::{c_char, CStr};
use std::mem::{align_of, size_of, MaybeUninit};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use dmaconf_c_abi::{
    dmaconf_plugin, dmaconf_plugin_entry_fn, DMACONF_ABI_MAJOR, DMACONF_ENTRY_SYMBOL,
    DMACONF_PLUGIN_MIN_SIZE_V1,
};

/// Why a file is not a usable plug-in. Each message names the file and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot load the shared object: {reason}")]
    Unloadable { path: PathBuf, reason: String },
    #[error("{path}: no `{DMACONF_ENTRY_SYMBOL}` symbol: not a dmaconf C plug-in (ffi/c/include/dmaconf.h)")]
    NoEntry { path: PathBuf },
    #[error("{path}: `{DMACONF_ENTRY_SYMBOL}()` returned NULL")]
    NullTable { path: PathBuf },
    #[error("{path}: `{DMACONF_ENTRY_SYMBOL}()` returned a table at {addr:#x}, not aligned to {align} bytes")]
    Misaligned {
        path: PathBuf,
        addr: usize,
        align: usize,
    },
    #[error("{path}: plug-in ABI major {found}, this host speaks major {expected}")]
    AbiMajor {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error("{path}: plug-in table is {found} bytes (struct_size), ABI major {major} needs at least {needed} (through `iova_free`)")]
    TableTooShort {
        path: PathBuf,
        found: u32,
        needed: u32,
        major: u32,
    },
    #[error("{path}: required function `{name}` is NULL in the plug-in table")]
    MissingFunction { path: PathBuf, name: &'static str },
    #[error("{path}: plug-in `{which}` string is {problem}")]
    BadString {
        path: PathBuf,
        which: &'static str,
        problem: &'static str,
    },
}

/// A loaded plug-in: the library, a copy of its table, its strings.
pub(crate) struct Plugin {
    pub path: PathBuf,
    pub name: String,
    pub version: String,
    /// The plug-in's table, copied up to its `struct_size`; members past it are NULL/0, which
    /// the ABI reads as "the default".
    pub table: dmaconf_plugin,
    /// Held for the table's function pointers: unloading it would leave them dangling.
    _library: libloading::Library,
    /// One call into the plug-in at a time (`spec/8-c-abi.md` § 8.7).
    pub calls: Mutex<()>,
    /// ABI violations the host caught (`host.rs`), taken by the door after each vector.
    pub violations: Mutex<Vec<String>>,
}

// SAFETY: the table holds raw pointers (strings we copied, and function pointers into the
// library we keep loaded); the host only calls through them under `calls`, one at a time, as
// the ABI's thread rule says, so sharing `Plugin` across threads is sound.
unsafe impl Send for Plugin {}
// SAFETY: as for `Send`: every call through the table takes the `calls` lock.
unsafe impl Sync for Plugin {}

/// Loads the plug-in at `path` and checks its table (`spec/8-c-abi.md` § 8.3).
pub fn load(path: &Path) -> Result<super::CPlugin, LoadError> {
    // dlopen searches the library path for a bare name; the user means the file.
    let path = std::fs::canonicalize(path).map_err(|e| LoadError::Unloadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // SAFETY: loading runs the library's initialisers, arbitrary code by design: the user asked
    // us to run this file. In-process mode trusts it that far; isolated mode (the wire) exists
    // for libraries that are not to be trusted.
    let library =
        unsafe { libloading::Library::new(&path) }.map_err(|e| LoadError::Unloadable {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    // SAFETY: the symbol's type is the one the header declares for `dmaconf_plugin_entry`;
    // a plug-in that declares it otherwise is outside the ABI (spec/8-c-abi.md).
    let entry: dmaconf_plugin_entry_fn =
        unsafe { library.get::<dmaconf_plugin_entry_fn>(DMACONF_ENTRY_SYMBOL.as_bytes()) }
            .map(|s| *s)
            .map_err(|_| LoadError::NoEntry { path: path.clone() })?;
    // SAFETY: `entry` is the plug-in's entry point, called once, on this thread, as the ABI says.
    let raw = unsafe { entry() };
    if raw.is_null() {
        return Err(LoadError::NullTable { path });
    }
    if !(raw as usize).is_multiple_of(align_of::<dmaconf_plugin>()) {
        return Err(LoadError::Misaligned {
            path,
            addr: raw as usize,
            align: align_of::<dmaconf_plugin>(),
        });
    }
    // SAFETY: `raw` is non-NULL and aligned, and the ABI makes the first 16 bytes (struct_size,
    // abi_major, abi_minor, reserved) part of every version of the table.
    let (struct_size, abi_major) = unsafe { ((*raw).struct_size, (*raw).abi_major) };
    if abi_major != DMACONF_ABI_MAJOR {
        return Err(LoadError::AbiMajor {
            path,
            found: abi_major,
            expected: DMACONF_ABI_MAJOR,
        });
    }
    if struct_size < DMACONF_PLUGIN_MIN_SIZE_V1 {
        return Err(LoadError::TableTooShort {
            path,
            found: struct_size,
            needed: DMACONF_PLUGIN_MIN_SIZE_V1,
            major: abi_major,
        });
    }
    let table = copy_table(raw, struct_size);
    let required = [
        ("create", table.create.is_none()),
        ("destroy", table.destroy.is_none()),
        ("probe", table.probe.is_none()),
        ("iova_try_alloc", table.iova_try_alloc.is_none()),
        ("iova_link", table.iova_link.is_none()),
        ("iova_sync", table.iova_sync.is_none()),
        ("iova_unlink", table.iova_unlink.is_none()),
        ("iova_destroy", table.iova_destroy.is_none()),
        ("iova_free", table.iova_free.is_none()),
    ];
    if let Some((name, _)) = required.iter().find(|(_, missing)| *missing) {
        return Err(LoadError::MissingFunction { path, name });
    }
    let name = string(&path, "name", table.name)?;
    let version = string(&path, "version", table.version)?;
    Ok(super::CPlugin(std::sync::Arc::new(Plugin {
        path,
        name,
        version,
        table,
        _library: library,
        calls: Mutex::new(()),
        violations: Mutex::new(Vec::new()),
    })))
}

/// The plug-in's table as this host knows it: the bytes below `struct_size` from the
/// plug-in, zero (NULL, "the default") above it.
fn copy_table(raw: *const dmaconf_plugin, struct_size: u32) -> dmaconf_plugin {
    let n = (struct_size as usize).min(size_of::<dmaconf_plugin>());
    let mut table = MaybeUninit::<dmaconf_plugin>::zeroed();
    // SAFETY: the plug-in promises `struct_size` readable bytes at `raw`; we copy at most that
    // many, and at most our own size, into our zeroed copy. Every member is an integer, a raw
    // pointer or an `Option` of a function pointer, for which all-zero is a valid value
    // (0 / NULL / None), so the partly-overwritten copy is a valid `dmaconf_plugin`.
    unsafe {
        std::ptr::copy_nonoverlapping(raw.cast::<u8>(), table.as_mut_ptr().cast::<u8>(), n);
        table.assume_init()
    }
}

fn string(path: &Path, which: &'static str, ptr: *const c_char) -> Result<String, LoadError> {
    let bad = |problem| LoadError::BadString {
        path: path.to_path_buf(),
        which,
        problem,
    };
    if ptr.is_null() {
        return Err(bad("NULL"));
    }
    // SAFETY: non-NULL, and the ABI says it is a NUL-terminated string valid while the library
    // is loaded (it is: we hold the library).
    let s = unsafe { CStr::from_ptr(ptr) };
    s.to_str().map(str::to_string).map_err(|_| bad("not UTF-8"))
}
