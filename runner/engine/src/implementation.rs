//! An implementation under test, as the engine sees it: a name, the capabilities it declares,
//! and a way to make a fresh instance per vector run (one device, one probe).

use dmaconf_platform::DmaApi;

/// Capability names a vector may `require` (`spec/INTERPRETING.md` § "Capabilities").
pub const CAPABILITIES: &[&str] = &[
    // The two-step calls themselves.
    "iova_api",
    // The streaming calls beside them (dma_map_phys, dma_unmap_phys, dma_need_unmap).
    "streaming",
    // dma_map_sg / dma_unmap_sg.
    "sg",
    // Exact Linux 7.3 values (IOVAs, event order): required by nothing, reported by the
    // reference so that a linux-profile run against a semantic-only implementation is flagged.
    "linux_exact",
    // The door can place a buffer at a fixed physical address (`buffers.NAME.at`).
    "fixed_phys",
    // The machine side: what the platform can model.
    "noncoherent",
    "swiotlb_pool",
    "cpu_cache_model",
    // P2P memory kinds: a buffer's `kind`, `pci_p2pdma_state`, peers reached at bus addresses.
    "p2p",
];

/// A factory for instances of one implementation.
pub struct Implementation {
    pub name: String,
    pub capabilities: Vec<String>,
    /// Run the misuse checker over each trace (spec/10-misuse-checker.md; on by default).
    pub check: bool,
    make: Box<dyn Fn() -> Box<dyn DmaApi> + Send + Sync>,
}

impl Implementation {
    pub fn new(
        name: impl Into<String>,
        capabilities: &[&str],
        make: impl Fn() -> Box<dyn DmaApi> + Send + Sync + 'static,
    ) -> Implementation {
        Implementation {
            name: name.into(),
            capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
            check: true,
            make: Box::new(make),
        }
    }

    pub fn instance(&self) -> Box<dyn DmaApi> {
        (self.make)()
    }
}

/// Capabilities that describe the platform side (the machine or a door), not the DMA layer.
pub const PLATFORM_SIDE: &[&str] = &[
    "fixed_phys",
    "noncoherent",
    "swiotlb_pool",
    "cpu_cache_model",
    "p2p",
];

/// Platform-side capabilities the simulated machine provides today; grows as the machine does.
pub const MACHINE_CAPABILITIES: &[&str] = &[
    "fixed_phys",
    "noncoherent",
    "swiotlb_pool",
    "cpu_cache_model",
    "p2p",
];

/// The requirements of a vector that neither the implementation nor the machine meets.
pub fn unmet(requires: &[String], implementation: &Implementation) -> Vec<String> {
    requires
        .iter()
        .filter(|r| {
            if PLATFORM_SIDE.contains(&r.as_str()) {
                !MACHINE_CAPABILITIES.contains(&r.as_str())
            } else {
                !implementation.capabilities.iter().any(|c| c == *r)
            }
        })
        .cloned()
        .collect()
}
