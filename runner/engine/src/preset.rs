//! Platform presets (`vectors/presets/*.yaml`, `spec/1-platform.md` § "Presets") and their
//! lowering to a machine configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dmaconf_machine::{MachineConfig, SwiotlbConfig};
use dmaconf_platform::{Arch, DomainType, PgtableBackend, PlatformFacts, Region, RegionKind};
use serde::Deserialize;

use crate::model::{DomainName, PlatformChoice};
use crate::yaml::{self, Located};

/// One preset file.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    pub id: String,
    /// What machine this is and where each fact comes from (a guest reading, a driver, a DT).
    pub why: String,
    pub arch: ArchName,
    pub domain: DomainName,
    pub backend: BackendName,
    pub pgsize_bitmap: u64,
    /// Inclusive aperture `[start, end]`.
    pub aperture: [u64; 2],
    pub force_aperture: bool,
    pub coherent: bool,
    pub untrusted: bool,
    pub pci: bool,
    #[serde(default)]
    pub forcedac: bool,
    pub dma_mask: u64,
    #[serde(default)]
    pub bus_dma_limit: u64,
    #[serde(default)]
    pub min_align_mask: u64,
    pub cache_line: u64,
    pub swiotlb: bool,
    pub kmalloc_bounce: bool,
    pub iommu_dma_config: bool,
    pub nr_cpus: u32,
    /// Physical address of the MSI doorbell behind iommu-dma's software MSI page (0: none).
    /// The DMA layer maps one granule for it at probe, taken from the IOVA allocator
    /// (`iommu_dma_get_msi_page`, IOVA-06).
    #[serde(default)]
    pub msi_doorbell: u64,
    /// `dma_get_max_seg_size` (default 64 KiB, Linux's and PCI probe's).
    #[serde(default)]
    pub max_seg_size: Option<u32>,
    /// `dma_get_seg_boundary` (default `0xFFFFFFFF` for PCI devices, set at PCI probe; all
    /// ones otherwise, Linux's default without `dma_parms`).
    #[serde(default)]
    pub seg_boundary_mask: Option<u64>,
    pub needs_sync_map: bool,
    pub oas_bits: u32,
    /// The page-table format can express a write-only PTE (VT-d second stage, AMD v1); false
    /// where a `FROM_DEVICE` link is readable too (io-pgtable-arm stage 1, x86_64 first stage,
    /// riscv). PROT-01. Presets without translation state false.
    pub write_only_pte: bool,
    #[serde(default)]
    pub reserved: Vec<ReservedSpec>,
}

#[derive(Clone, Copy, Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArchName {
    X86,
    Arm64,
    Riscv,
    Arm,
}

#[derive(Clone, Copy, Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BackendName {
    Iommupt,
    IoPgtableArm,
}

#[derive(Clone, Copy, Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegionName {
    PciWindow,
    DmaRangeGap,
    Msi,
    Reserved,
    Direct,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservedSpec {
    pub start: u64,
    pub end: u64,
    pub kind: RegionName,
}

/// Where bounce pools sit in the simulated physical map (above the buffers' area).
const SWIOTLB_BASE: u64 = 0x8000_0000;
/// 64 MiB of 2 KiB slots, Linux's default pool.
const SWIOTLB_NSLABS: u64 = dmaconf_machine::swiotlb::DEFAULT_NSLABS;

/// All presets, by id, and the preset files that could not be read, by file name.
#[derive(Clone, Debug, Default)]
pub struct Presets {
    pub by_id: BTreeMap<String, (PathBuf, Preset)>,
    /// A malformed preset costs the vectors that name it, not the others: each one that names
    /// it gets this error as its `harness_error` (issue 15: one bad input, one result).
    pub broken: BTreeMap<String, Located>,
}

impl Presets {
    /// Loads every `*.yaml` in `dir`. Good presets are kept whatever the others hold; a preset
    /// that does not parse, or whose id differs from its file name, is `broken` under its file
    /// name and reported among the errors.
    pub fn load(dir: &Path) -> (Presets, Vec<Located>) {
        let mut presets = Presets::default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        {
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let parsed = crate::load::read_regular(file)
                .and_then(|text| yaml::parse_file::<Preset>(file, &text));
            match parsed {
                Ok(p) if p.id == stem => {
                    presets.by_id.insert(p.id.clone(), (file.clone(), p));
                }
                Ok(p) => {
                    presets.broken.insert(
                        stem.clone(),
                        Located::new(
                            file,
                            1,
                            1,
                            format!(
                                "preset file `{stem}.yaml` declares id `{}`: a preset's id must be its file name",
                                p.id
                            ),
                        ),
                    );
                }
                Err(e) => {
                    presets.broken.insert(stem, e);
                }
            }
        }
        let errors = presets.broken.values().cloned().collect();
        (presets, errors)
    }

    /// The machine configuration for a preset with a vector's overrides applied.
    pub fn configure(&self, choice: &PlatformChoice) -> Result<MachineConfig, String> {
        if let Some(e) = self.broken.get(&choice.preset) {
            return Err(format!(
                "platform preset `{}` is malformed: {e}",
                choice.preset
            ));
        }
        let (_, p) = self
            .by_id
            .get(&choice.preset)
            .ok_or_else(|| format!("unknown platform preset `{}`", choice.preset))?;
        Ok(lower(p, choice))
    }
}

fn domain_type(d: DomainName) -> DomainType {
    match d {
        DomainName::None => DomainType::None,
        DomainName::Identity => DomainType::Identity,
        DomainName::Dma => DomainType::Dma,
        DomainName::DmaFq => DomainType::DmaFq,
    }
}

/// Applies overrides and builds the machine configuration.
fn lower(p: &Preset, o: &PlatformChoice) -> MachineConfig {
    let facts = PlatformFacts {
        arch: match p.arch {
            ArchName::X86 => Arch::X86,
            ArchName::Arm64 => Arch::Arm64,
            ArchName::Riscv => Arch::Riscv,
            ArchName::Arm => Arch::Arm,
        },
        domain: {
            // iommu_get_default_domain_type: an untrusted PCI device always gets a strict DMA
            // domain, whatever the default (lazy) type of the machine.
            let d = domain_type(o.domain.unwrap_or(p.domain));
            let untrusted = o.untrusted.unwrap_or(p.untrusted) && o.pci.unwrap_or(p.pci);
            if untrusted && d == DomainType::DmaFq {
                DomainType::Dma
            } else {
                d
            }
        },
        backend: match p.backend {
            BackendName::Iommupt => PgtableBackend::Iommupt,
            BackendName::IoPgtableArm => PgtableBackend::IoPgtableArm,
        },
        pgsize_bitmap: o.pgsize_bitmap.unwrap_or(p.pgsize_bitmap),
        aperture_start: p.aperture[0],
        aperture_end: o.aperture_end.unwrap_or(p.aperture[1]),
        force_aperture: p.force_aperture,
        coherent: o.coherent.unwrap_or(p.coherent),
        untrusted: o.untrusted.unwrap_or(p.untrusted),
        pci: o.pci.unwrap_or(p.pci),
        forcedac: o.forcedac.unwrap_or(p.forcedac),
        dma_mask: o.dma_mask.unwrap_or(p.dma_mask),
        bus_dma_limit: o.bus_dma_limit.unwrap_or(p.bus_dma_limit),
        min_align_mask: o.min_align_mask.unwrap_or(p.min_align_mask),
        cache_line: o.cache_line.unwrap_or(p.cache_line),
        swiotlb: o.swiotlb.unwrap_or(p.swiotlb),
        kmalloc_bounce: p.kmalloc_bounce,
        iommu_dma_config: p.iommu_dma_config,
        nr_cpus: o.nr_cpus.unwrap_or(p.nr_cpus),
        msi_doorbell: p.msi_doorbell,
        max_seg_size: o.max_seg_size.or(p.max_seg_size).unwrap_or(0x1_0000),
        seg_boundary_mask: o.seg_boundary_mask.or(p.seg_boundary_mask).unwrap_or(
            if o.pci.unwrap_or(p.pci) {
                0xFFFF_FFFF
            } else {
                u64::MAX
            },
        ),
        swiotlb_force: o.swiotlb_force.unwrap_or(false),
        dma_offset: o.dma_offset.unwrap_or(0),
        write_only_pte: p.write_only_pte,
    };
    let reserved = p
        .reserved
        .iter()
        .map(|r| Region {
            start: r.start,
            end: r.end,
            kind: match r.kind {
                RegionName::PciWindow => RegionKind::PciWindow,
                RegionName::DmaRangeGap => RegionKind::DmaRangeGap,
                RegionName::Msi => RegionKind::Msi,
                RegionName::Reserved => RegionKind::Reserved,
                RegionName::Direct => RegionKind::Direct,
            },
        })
        // Every region is reported, with its kind; reserving host-bridge windows and
        // dma-range gaps only for a PCI device is the DMA layer's decision
        // (`iova_reserve_iommu_regions` calls `iova_reserve_pci_windows` only if `dev_is_pci`),
        // IOVA-05.
        .collect();
    MachineConfig {
        facts,
        reserved,
        needs_sync_map: o.needs_sync_map.unwrap_or(p.needs_sync_map),
        oas_bits: p.oas_bits,
        // Linux's geometry for the pool size and the CPU count; the kernel's page size is the
        // granule when that is larger than 4 KiB (arm64 SMMUs take PAGE_SIZE as granule).
        swiotlb: facts.swiotlb.then(|| {
            SwiotlbConfig::linux(
                SWIOTLB_BASE,
                o.swiotlb_nslabs.unwrap_or(SWIOTLB_NSLABS),
                facts.nr_cpus,
                facts.pci,
                facts.granule().max(4096),
            )
        }),
    }
}
