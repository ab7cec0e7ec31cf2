//! The wire's messages (`spec/9-wire.md`): one JSON object per line, every field optional at
//! the type level. Which fields a message must carry depends on its `call` and direction; the
//! readers check that with [`need`] and name the missing field. Unknown fields are ignored, so
//! a later protocol minor can add fields without breaking older peers.

use dmaconf_platform::{
    Arch, DomainType, IovaState, PgtableBackend, PlatformFacts, Region, RegionKind, SgEntry,
};
use serde::{Deserialize, Serialize};

/// The protocol version this crate speaks (`spec/9-wire.md`, "Handshake").
pub const PROTOCOL: u32 = 1;

/// The longest line either side accepts (a runaway peer cannot exhaust memory).
pub const MAX_LINE: usize = 1 << 20;

/// One message. Requests carry `call`; replies carry `ret`/`error` and echo the request's `id`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,

    // Handshake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Vec<String>>,

    // Devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<Facts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved: Option<Vec<WireRegion>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now_ns: Option<u64>,

    // Arguments of the DMA API calls and of the platform callbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<WireState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segs: Option<Vec<WireSeg>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phys: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attrs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iova: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prot: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orig: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alloc_align_mask: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_align_mask: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u32>,

    // Replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<WireError>,
}

impl Message {
    /// A request for `call`, without an id (the sender numbers requests that expect a reply).
    pub fn request(call: &str) -> Message {
        Message {
            call: Some(call.to_string()),
            ..Message::default()
        }
    }

    /// A reply to the request numbered `id`.
    pub fn reply(id: Option<u64>) -> Message {
        Message {
            id,
            ..Message::default()
        }
    }

    /// An error reply (`spec/9-wire.md`, "Errors").
    pub fn failure(id: Option<u64>, code: &str, message: impl Into<String>) -> Message {
        Message {
            id,
            error: Some(WireError {
                code: code.to_string(),
                message: message.into(),
            }),
            ..Message::default()
        }
    }

    /// The message as one line, newline included.
    pub fn line(&self) -> String {
        // A `Message` holds only strings, integers, booleans and vectors of those: it always
        // serialises.
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses one line; the error says what is wrong with it.
    pub fn parse(line: &str) -> Result<Message, String> {
        serde_json::from_str(line.trim_end()).map_err(|e| format!("not a wire message: {e}"))
    }
}

/// A required field: present, or an error naming it and the call.
pub fn need<T: Clone>(value: &Option<T>, field: &str, call: &str) -> Result<T, String> {
    value
        .clone()
        .ok_or_else(|| format!("`{call}` needs the field `{field}`"))
}

/// The `ret` of a reply: a boolean, or an integer (negative errno, count, address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Bool(bool),
    Int(i64),
    Uint(u64),
}

impl Ret {
    pub fn as_bool(self) -> Option<bool> {
        match self {
            Ret::Bool(b) => Some(b),
            _ => None,
        }
    }
    /// An `int32` result (0 or -errno, a count).
    pub fn as_i32(self) -> Option<i32> {
        match self {
            Ret::Int(v) => i32::try_from(v).ok(),
            Ret::Uint(v) => i32::try_from(v).ok(),
            Ret::Bool(_) => None,
        }
    }
    /// A `uint64` result (an address, a length).
    pub fn as_u64(self) -> Option<u64> {
        match self {
            Ret::Uint(v) => Some(v),
            Ret::Int(v) => u64::try_from(v).ok(),
            Ret::Bool(_) => None,
        }
    }
    pub fn as_u32(self) -> Option<u32> {
        self.as_u64().and_then(|v| u32::try_from(v).ok())
    }
}

impl Serialize for Ret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ret::Bool(b) => s.serialize_bool(*b),
            Ret::Int(v) => s.serialize_i64(*v),
            Ret::Uint(v) => s.serialize_u64(*v),
        }
    }
}

impl<'de> Deserialize<'de> for Ret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Ret, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Ret;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a boolean or an integer")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ret, E> {
                Ok(Ret::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ret, E> {
                Ok(Ret::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ret, E> {
                Ok(Ret::Uint(v))
            }
        }
        d.deserialize_any(Visit)
    }
}

/// An error reply's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// Error codes (`spec/9-wire.md`, "Errors").
pub mod code {
    /// The line is not a JSON object of the wire's shape.
    pub const MALFORMED: &str = "malformed";
    /// The `call` names nothing the receiver serves.
    pub const UNKNOWN_METHOD: &str = "unknown_method";
    /// A required field is missing or has the wrong type; an unknown device.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The hello names a protocol version the server does not speak.
    pub const VERSION: &str = "version";
    /// The implementation failed inside the call (a panic, an exception): a `crash`.
    pub const PANIC: &str = "panic";
    /// The implementation does not provide this call: `not_supported`.
    pub const NOT_SUPPORTED: &str = "not_supported";
    /// The server cannot serve at all (its implementation could not be loaded).
    pub const UNAVAILABLE: &str = "unavailable";
}

/// `struct dma_iova_state` on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireState {
    pub addr: u64,
    pub size: u64,
}

impl From<IovaState> for WireState {
    fn from(s: IovaState) -> WireState {
        WireState {
            addr: s.addr,
            size: s.size,
        }
    }
}

impl From<WireState> for IovaState {
    fn from(s: WireState) -> IovaState {
        IovaState {
            addr: s.addr,
            size: s.size,
        }
    }
}

/// One scatterlist entry on the wire (`SgEntry`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireSeg {
    pub phys: u64,
    pub len: u64,
    pub dma_address: u64,
    pub dma_len: u64,
    pub flags: u32,
}

impl From<SgEntry> for WireSeg {
    fn from(e: SgEntry) -> WireSeg {
        WireSeg {
            phys: e.phys,
            len: e.len,
            dma_address: e.dma_address,
            dma_len: e.dma_len,
            flags: e.flags,
        }
    }
}

impl From<WireSeg> for SgEntry {
    fn from(e: WireSeg) -> SgEntry {
        SgEntry {
            phys: e.phys,
            len: e.len,
            dma_address: e.dma_address,
            dma_len: e.dma_len,
            flags: e.flags,
        }
    }
}

/// A reserved region on the wire; `kind` in `RegionKind` numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireRegion {
    pub start: u64,
    pub end: u64,
    pub kind: u32,
}

impl From<Region> for WireRegion {
    fn from(r: Region) -> WireRegion {
        WireRegion {
            start: r.start,
            end: r.end,
            kind: r.kind as u32,
        }
    }
}

impl TryFrom<WireRegion> for Region {
    type Error = String;
    fn try_from(r: WireRegion) -> Result<Region, String> {
        let kind = match r.kind {
            0 => RegionKind::PciWindow,
            1 => RegionKind::DmaRangeGap,
            2 => RegionKind::Msi,
            3 => RegionKind::Reserved,
            4 => RegionKind::Direct,
            k => return Err(format!("unknown reserved-region kind {k}")),
        };
        Ok(Region {
            start: r.start,
            end: r.end,
            kind,
        })
    }
}

/// `PlatformFacts` on the wire: the same fields, enums as their numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub arch: u32,
    pub domain: u32,
    pub backend: u32,
    pub pgsize_bitmap: u64,
    pub aperture_start: u64,
    pub aperture_end: u64,
    pub force_aperture: bool,
    pub coherent: bool,
    pub untrusted: bool,
    pub pci: bool,
    pub forcedac: bool,
    pub dma_mask: u64,
    pub bus_dma_limit: u64,
    pub min_align_mask: u64,
    pub cache_line: u64,
    pub swiotlb: bool,
    pub kmalloc_bounce: bool,
    pub iommu_dma_config: bool,
    pub nr_cpus: u32,
    pub msi_doorbell: u64,
    pub max_seg_size: u32,
    pub seg_boundary_mask: u64,
    pub swiotlb_force: bool,
    pub dma_offset: u64,
    /// PROT-01. Absent from a peer that predates it: true, the facts' default.
    #[serde(default = "yes")]
    pub write_only_pte: bool,
}

fn yes() -> bool {
    true
}

impl From<PlatformFacts> for Facts {
    fn from(f: PlatformFacts) -> Facts {
        Facts {
            arch: f.arch as u32,
            domain: f.domain as u32,
            backend: f.backend as u32,
            pgsize_bitmap: f.pgsize_bitmap,
            aperture_start: f.aperture_start,
            aperture_end: f.aperture_end,
            force_aperture: f.force_aperture,
            coherent: f.coherent,
            untrusted: f.untrusted,
            pci: f.pci,
            forcedac: f.forcedac,
            dma_mask: f.dma_mask,
            bus_dma_limit: f.bus_dma_limit,
            min_align_mask: f.min_align_mask,
            cache_line: f.cache_line,
            swiotlb: f.swiotlb,
            kmalloc_bounce: f.kmalloc_bounce,
            iommu_dma_config: f.iommu_dma_config,
            nr_cpus: f.nr_cpus,
            msi_doorbell: f.msi_doorbell,
            max_seg_size: f.max_seg_size,
            seg_boundary_mask: f.seg_boundary_mask,
            swiotlb_force: f.swiotlb_force,
            dma_offset: f.dma_offset,
            write_only_pte: f.write_only_pte,
        }
    }
}

impl TryFrom<Facts> for PlatformFacts {
    type Error = String;
    fn try_from(f: Facts) -> Result<PlatformFacts, String> {
        let arch = match f.arch {
            0 => Arch::X86,
            1 => Arch::Arm64,
            2 => Arch::Riscv,
            3 => Arch::Arm,
            a => return Err(format!("unknown arch {a}")),
        };
        let domain = match f.domain {
            0 => DomainType::None,
            1 => DomainType::Identity,
            2 => DomainType::Dma,
            3 => DomainType::DmaFq,
            d => return Err(format!("unknown domain type {d}")),
        };
        let backend = match f.backend {
            0 => PgtableBackend::Iommupt,
            1 => PgtableBackend::IoPgtableArm,
            b => return Err(format!("unknown page-table backend {b}")),
        };
        Ok(PlatformFacts {
            arch,
            domain,
            backend,
            pgsize_bitmap: f.pgsize_bitmap,
            aperture_start: f.aperture_start,
            aperture_end: f.aperture_end,
            force_aperture: f.force_aperture,
            coherent: f.coherent,
            untrusted: f.untrusted,
            pci: f.pci,
            forcedac: f.forcedac,
            dma_mask: f.dma_mask,
            bus_dma_limit: f.bus_dma_limit,
            min_align_mask: f.min_align_mask,
            cache_line: f.cache_line,
            swiotlb: f.swiotlb,
            kmalloc_bounce: f.kmalloc_bounce,
            iommu_dma_config: f.iommu_dma_config,
            nr_cpus: f.nr_cpus,
            msi_doorbell: f.msi_doorbell,
            max_seg_size: f.max_seg_size,
            seg_boundary_mask: f.seg_boundary_mask,
            swiotlb_force: f.swiotlb_force,
            dma_offset: f.dma_offset,
            write_only_pte: f.write_only_pte,
        })
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes; `None` at the end of the stream.
pub fn read_line<R: std::io::BufRead>(reader: &mut R) -> std::io::Result<Option<String>> {
    use std::io::{BufRead, Read};
    let mut buf = String::new();
    let n = reader.take(MAX_LINE as u64 + 1).read_line(&mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a line longer than {MAX_LINE} bytes"),
        ));
    }
    Ok(Some(buf))
}
