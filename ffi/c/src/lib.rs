//! The C door, in process: loads a shared object that exports the dmaconf C ABI
//! (`ffi/c/include/dmaconf.h`, `spec/8-c-abi.md`), checks it, and runs it as an
//! [`Implementation`] on the simulated machine.
//!
//! Public API (small on purpose; the wire's plug-in host uses the same):
//! * [`load`] a `.so` into a [`CPlugin`] (or a [`LoadError`] naming the file and the fault);
//! * [`CPlugin::implementation`]: the engine's [`Implementation`] (one C device per run);
//!   [`CPlugin::device`]: one `Box<dyn DmaApi>` for a host that drives calls itself;
//! * [`CDoor`]: the [`Door`] for `--impl c:PATH.so --in-process`; a plug-in that failed to load
//!   gives every vector a `harness_error` with the load error, and the run goes on.
//!
//! Unsafe code lives only in this crate, at the FFI line: `load.rs` (dlopen, reading the table),
//! `device.rs` (calls into the plug-in), `host.rs` (callbacks from the plug-in).

mod device;
mod host;
mod load;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use dmaconf_engine::door::Door;
use dmaconf_engine::exec::{Execution, Stop};
use dmaconf_engine::model::Vector;
use dmaconf_engine::preset::Presets;
use dmaconf_engine::Implementation;
use dmaconf_platform::DmaApi;

pub use load::{load, LoadError};

/// Capability bits of the ABI and the engine's names for them (`spec/8-c-abi.md`).
pub const CAPABILITY_BITS: &[(u64, &str)] = &[
    (dmaconf_c_abi::DMACONF_CAP_IOVA_API, "iova_api"),
    (dmaconf_c_abi::DMACONF_CAP_STREAMING, "streaming"),
    (dmaconf_c_abi::DMACONF_CAP_SG, "sg"),
    (dmaconf_c_abi::DMACONF_CAP_LINUX_EXACT, "linux_exact"),
];

/// A loaded, checked plug-in. Cheap to clone; the library stays loaded while any clone or any
/// device made from it lives.
#[derive(Clone)]
pub struct CPlugin(Arc<load::Plugin>);

impl CPlugin {
    /// The file it was loaded from (absolute).
    pub fn path(&self) -> &Path {
        &self.0.path
    }
    /// The plug-in's `name`, for reports.
    pub fn name(&self) -> &str {
        &self.0.name
    }
    /// The plug-in's `version`, for reports.
    pub fn version(&self) -> &str {
        &self.0.version
    }
    /// The raw `capabilities` bits the plug-in declared (unknown bits included).
    pub fn capability_bits(&self) -> u64 {
        self.0.table.capabilities
    }
    /// The engine's names of the known capability bits the plug-in declared.
    pub fn capabilities(&self) -> Vec<&'static str> {
        CAPABILITY_BITS
            .iter()
            .filter(|(bit, _)| self.capability_bits() & bit != 0)
            .map(|(_, name)| *name)
            .collect()
    }
    /// A fresh device (one vector run, one probe). The plug-in's `create` runs at the first
    /// call (`probe`), when the host table can reach the platform.
    pub fn device(&self) -> Box<dyn DmaApi> {
        Box::new(device::CDevice::new(self.0.clone()))
    }
    /// The plug-in as the engine's in-process implementation.
    pub fn implementation(&self) -> Implementation {
        let plugin = self.clone();
        Implementation::new(self.name(), &self.capabilities(), move || plugin.device())
    }
    /// ABI violations the host caught since the last call (each ends its run: `spec/8-c-abi.md`
    /// § 8.9), oldest first.
    pub fn take_violations(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.violations.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// `--impl c:PATH.so`, in process: the loaded plug-in, or why it could not be loaded.
pub struct CDoor {
    path: PathBuf,
    loaded: Result<(CPlugin, Implementation), LoadError>,
    /// Serialises `execute` so violations are attributed to the vector that caused them.
    running: Mutex<()>,
}

impl CDoor {
    /// Loads `path`; a failure is kept and reported on every vector.
    pub fn new(path: &Path) -> CDoor {
        CDoor {
            path: path.to_path_buf(),
            loaded: load(path).map(|p| {
                let i = p.implementation();
                (p, i)
            }),
            running: Mutex::new(()),
        }
    }
    /// The plug-in, when it loaded.
    pub fn plugin(&self) -> Result<&CPlugin, &LoadError> {
        self.loaded.as_ref().map(|(p, _)| p)
    }
}

impl Door for CDoor {
    fn name(&self) -> String {
        match &self.loaded {
            Ok((p, _)) => p.name().to_string(),
            Err(_) => format!("c:{}", self.path.display()),
        }
    }

    fn unmet(&self, vector: &Vector) -> Vec<String> {
        match &self.loaded {
            Ok((_, i)) => i.unmet(vector),
            // Runs anyway, so that each vector reports the load error.
            Err(_) => Vec::new(),
        }
    }

    fn execute(&self, vector: &Vector, presets: &Presets) -> Execution {
        let (plugin, implementation) = match &self.loaded {
            Ok(l) => l,
            Err(e) => return harness_everywhere(vector, &e.to_string()),
        };
        let _one_at_a_time = self.running.lock().unwrap_or_else(|e| e.into_inner());
        // A violation ends its run as a harness error at that step: the device raises it as a
        // `DoorFault` (device.rs), which the engine turns into the run's stop.
        plugin.take_violations();
        implementation.execute(vector, presets)
    }
}

/// One run per platform choice, each stopped with `reason` before it started.
fn harness_everywhere(vector: &Vector, reason: &str) -> Execution {
    Execution::stopped(vector, Stop::Harness(reason.to_string()))
}
