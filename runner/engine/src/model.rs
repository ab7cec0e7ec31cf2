//! The vector format, version 1 (`spec/INTERPRETING.md` § "Vector files").
//!
//! These types are the single source of the format: serde reads vectors into them and schemars
//! generates `spec/vector.schema.json` from them. Every struct denies unknown keys, so a typo in a
//! vector is an error with its file:line:column, never a silently ignored field.

use std::borrow::Cow;
use std::collections::BTreeMap;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// The version of the vector format this engine reads.
pub const FORMAT_VERSION: u32 = 1;

/// The first YAML document of every vector file.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Vector format version; must be 1.
    pub format: u32,
    /// The area the file's vectors belong to (`try-alloc`, `link`, ...), used by `--area`.
    pub area: String,
    /// What the file covers, for readers.
    #[serde(default)]
    pub about: Option<String>,
    /// Values every vector of the file takes unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
}

/// File-level defaults (Wycheproof's test-group parameters).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub platform: Option<PlatformSpec>,
    #[serde(default)]
    pub requires: Option<Vec<String>>,
    #[serde(default)]
    pub since: Option<String>,
}

/// One vector: a platform, named buffers and states, steps with their expectations.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Vector {
    /// Immutable identifier: lower-case words joined by `-`; never reused, survives renames.
    pub id: String,
    /// The spec rules this vector exercises (IDs defined in `spec/`).
    pub rules: Vec<String>,
    /// What the vector shows and where each expectation comes from.
    pub why: String,
    /// Capabilities the implementation and machine must have; else `not_supported`.
    #[serde(default)]
    pub requires: Option<Vec<String>>,
    /// First kernel version whose behaviour the expectations describe.
    #[serde(default)]
    pub since: Option<String>,
    /// Last kernel version they describe (absent: still current).
    #[serde(default)]
    pub until: Option<String>,
    /// The caller breaks a rule on purpose: the misuse class (`spec/2-outcomes.md`).
    #[serde(default)]
    pub misuse: Option<String>,
    /// Platform preset(s) with overrides; falls back to the file's default.
    #[serde(default)]
    pub platform: Option<PlatformSpec>,
    /// Named buffers placed in memory by the runner; referred to as `buf.NAME`.
    #[serde(default)]
    pub buffers: BTreeMap<String, BufferSpec>,
    pub steps: Vec<crate::yaml::At<Step>>,
    /// End-state expectations; by default nothing may be left behind.
    #[serde(default)]
    pub end: Option<EndExpect>,
    /// Where the expected values come from, worked out before the reference ran
    /// (`spec/INTERPRETING.md` § "Derivation"). `dmaconf lint` counts the vectors without one.
    #[serde(default)]
    pub derived: Vec<Derivation>,
}

/// One source of a vector's expected values: how they were worked out and from what.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Derivation {
    /// How the values were obtained.
    pub by: DerivedBy,
    /// What they were worked out from, one item each: a Linux source function as
    /// `PATH:FUNCTION` (`drivers/iommu/dma-iommu.c:iommu_dma_iova_link_swiotlb`), a spec rule
    /// ID (`LINK-09`), or a digest or report section (`KERNEL-FACTS §7.3`, `REAL-KERNEL §6`,
    /// `reports/kernel-7.3.4.md`).
    pub source: Vec<String>,
    /// Which expectations this item covers when it is not all of them (`linux IOVAs`,
    /// `slot addresses`).
    #[serde(default)]
    pub covers: Option<String>,
    /// The kernel source the values were checked against (default: the release the rules
    /// describe, 7.3).
    #[serde(default)]
    pub kernel: Option<String>,
}

/// How a vector's values were worked out. None of them is "the reference's output".
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DerivedBy {
    /// By hand from the kernel source (and the spec text written from it).
    Hand,
    /// Observed on a real kernel (the kernel door, or a run recorded in REAL-KERNEL.md).
    KernelRun,
    /// From the rule text alone (semantic expectations with no Linux-specific value).
    Spec,
    /// By a generator that does not call the reference (a naive model, a script).
    Generator,
}

/// A buffer: `size` bytes starting `offset` bytes into a page-aligned placement.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BufferSpec {
    pub size: u64,
    /// Offset of byte 0 inside its 4 KiB page (the in-granule offset a vector tests).
    #[serde(default)]
    pub offset: u64,
    /// Pattern seed of the initial contents (`spec/INTERPRETING.md` § "Patterns").
    #[serde(default)]
    pub fill: Option<u64>,
    /// A fixed physical address (the reference machine honours it; a door that cannot place
    /// memory reports `not_supported`).
    #[serde(default)]
    pub at: Option<u64>,
    /// What the memory is (default `ram`): a peer device's BAR with its `pci_p2pdma` map type
    /// for the device under test, or MMIO that is no P2P provider's (`spec/6-streaming.md`
    /// § "P2P and MMIO").
    #[serde(default)]
    pub kind: Option<MemoryKindName>,
    /// The P2P provider's `bus_offset`: a `p2p_bus_addr` buffer is reached by peers at
    /// `phys + bus_offset` (default 0).
    #[serde(default)]
    pub bus_offset: Option<u64>,
}

/// A buffer's memory kind; the P2P kinds name the `pci_p2pdma_map_type` the platform reports.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKindName {
    Ram,
    P2pBusAddr,
    P2pThruHostBridge,
    P2pNotSupported,
    Mmio,
}

/// One step: exactly one action, optionally the CPU it runs on, and its expectations.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub dma_iova_try_alloc: Option<TryAllocArgs>,
    #[serde(default)]
    pub dma_iova_link: Option<LinkArgs>,
    #[serde(default)]
    pub dma_iova_sync: Option<SyncArgs>,
    #[serde(default)]
    pub dma_iova_unlink: Option<UnlinkArgs>,
    #[serde(default)]
    pub dma_iova_destroy: Option<DestroyArgs>,
    #[serde(default)]
    pub dma_iova_free: Option<StateArg>,
    #[serde(default)]
    pub dma_use_iova: Option<StateArg>,
    #[serde(default)]
    pub dma_iova_size: Option<StateArg>,
    #[serde(default, rename = "device.read")]
    pub device_read: Option<ReadArgs>,
    #[serde(default, rename = "device.write")]
    pub device_write: Option<WriteArgs>,
    #[serde(default, rename = "cpu.read")]
    pub cpu_read: Option<ReadArgs>,
    #[serde(default, rename = "cpu.write")]
    pub cpu_write: Option<WriteArgs>,
    /// The CPU pulls the cache lines of `[addr, addr + len)` in by itself (a prefetch or
    /// speculative load), as it may at any time; no data, no hazards of its own.
    #[serde(default, rename = "cpu.speculate")]
    pub cpu_speculate: Option<ReadArgs>,
    /// The caller writes its own state struct (garbage from the stack, a reused state).
    #[serde(default, rename = "state.set")]
    pub state_set: Option<StateSetArgs>,
    /// Streaming `dma_map_phys`; the DMA address is kept as `HANDLE.dma`.
    #[serde(default)]
    pub dma_map_phys: Option<MapPhysArgs>,
    /// Streaming `dma_unmap_phys`.
    #[serde(default)]
    pub dma_unmap_phys: Option<UnmapPhysArgs>,
    /// `dma_need_unmap`.
    #[serde(default)]
    pub dma_need_unmap: Option<NoArgs>,
    /// `dma_need_sync(dev, addr)`.
    #[serde(default)]
    pub dma_need_sync: Option<AddrArg>,
    /// `dma_map_page_attrs`: `dma_map_phys` that refuses `DMA_ATTR_MMIO`; the DMA address is
    /// kept as `HANDLE.dma`.
    #[serde(default)]
    pub dma_map_page_attrs: Option<MapPhysArgs>,
    /// `dma_unmap_page_attrs`: does nothing with `DMA_ATTR_MMIO`.
    #[serde(default)]
    pub dma_unmap_page_attrs: Option<UnmapPhysArgs>,
    /// `dma_map_resource`: `dma_map_phys` with `DMA_ATTR_MMIO` added.
    #[serde(default)]
    pub dma_map_resource: Option<MapPhysArgs>,
    /// `dma_unmap_resource`: `dma_unmap_phys` with `DMA_ATTR_MMIO` added.
    #[serde(default)]
    pub dma_unmap_resource: Option<UnmapPhysArgs>,
    /// `dma_sync_single_for_cpu`.
    #[serde(default)]
    pub dma_sync_single_for_cpu: Option<SyncSingleArgs>,
    /// `dma_sync_single_for_device`.
    #[serde(default)]
    pub dma_sync_single_for_device: Option<SyncSingleArgs>,
    /// `pci_p2pdma_state` of the page at `phys`: what the platform says the memory is for the
    /// device (`none`, `not_supported`, `bus_addr`, `thru_host_bridge`). Asks the platform, not
    /// the DMA layer.
    #[serde(default)]
    pub pci_p2pdma_state: Option<PhysArg>,
    /// `dma_map_sg` of a list of segments; `ret` is the number of DMA segments or -errno, and
    /// DMA segment `i` is `LIST.i.dma` / `LIST.i.len` in later expressions.
    #[serde(default)]
    pub dma_map_sg: Option<MapSgArgs>,
    /// `dma_unmap_sg` of a list a `dma_map_sg` step mapped.
    #[serde(default)]
    pub dma_unmap_sg: Option<UnmapSgArgs>,
    /// Platform time moves on (timers such as the flush queue's may fire).
    #[serde(default, rename = "time.advance")]
    pub time_advance: Option<TimeArgs>,
    /// The CPU the step runs on (default 0).
    #[serde(default)]
    pub cpu: Option<u32>,
    /// Run the step this many times in a row (1 to 1,048,576), `i` being 0, 1, ... in its
    /// expressions and expectations (`spec/INTERPRETING.md` § "Repetition").
    #[serde(default)]
    pub repeat: Option<u64>,
    /// Checked under every profile.
    #[serde(default)]
    pub expect: Option<StepExpect>,
    /// Checked under the `linux` profile in addition to `expect` (a field given in both is
    /// taken from here). For an API call, `events` here is the complete ordered event list of
    /// the step; omitted, it is the empty list.
    #[serde(default)]
    pub linux: Option<StepExpect>,
    /// The misuse checker's codes this step must produce (`CHECK-NN`, spec/10-misuse-checker.md),
    /// under every profile; omitted, none.
    #[serde(default)]
    pub detected: Option<Vec<String>>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateArg {
    pub state: String,
}

/// `dma_map_phys` arguments; `handle` names the returned DMA address.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapPhysArgs {
    pub handle: String,
    pub phys: Expr,
    pub size: Expr,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

/// `dma_unmap_phys` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmapPhysArgs {
    pub addr: Expr,
    pub size: Expr,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

/// `dma_sync_single_for_{cpu,device}` arguments.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSingleArgs {
    pub addr: Expr,
    pub size: Expr,
    pub dir: DirSpec,
}

/// A DMA address argument.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddrArg {
    pub addr: Expr,
}

/// A physical address argument.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhysArg {
    pub phys: Expr,
}

/// One scatterlist entry a caller hands to `dma_map_sg`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SgSeg {
    pub phys: Expr,
    pub len: Expr,
}

/// `dma_map_sg` arguments; `list` names the scatterlist for later steps.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MapSgArgs {
    pub list: String,
    pub segs: Vec<SgSeg>,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

/// `dma_unmap_sg` arguments: the list as mapped, all of its entries.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnmapSgArgs {
    pub list: String,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

/// One expected DMA segment of a `dma_map_sg` result.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SgExpect {
    pub dma: Expected,
    pub len: Expected,
}

/// A call without arguments: `{}`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

/// `time.advance` by whole milliseconds.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeArgs {
    pub ms: u64,
}

/// Sets a state's two words directly, as a driver's own code can.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSetArgs {
    pub state: String,
    pub addr: Expr,
    pub size: Expr,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TryAllocArgs {
    pub state: String,
    pub phys: Expr,
    pub size: Expr,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkArgs {
    pub state: String,
    pub phys: Expr,
    pub offset: Expr,
    pub size: Expr,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncArgs {
    pub state: String,
    pub offset: Expr,
    pub size: Expr,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkArgs {
    pub state: String,
    pub offset: Expr,
    pub size: Expr,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyArgs {
    pub state: String,
    pub mapped_len: Expr,
    pub dir: DirSpec,
    #[serde(default)]
    pub attrs: Vec<String>,
}

/// A read of `len` bytes at `addr` (a DMA address for the device, a physical one for the CPU).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    pub addr: Expr,
    pub len: Expr,
}

/// A write of a pattern at `addr`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    pub addr: Expr,
    pub data: PatternSpec,
}

/// Bytes given as a pattern (`spec/INTERPRETING.md` § "Patterns").
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatternSpec {
    /// Pattern seed; byte i is `pattern(seed, at + i)`.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Every byte equals this value.
    #[serde(default)]
    pub byte: Option<u8>,
    /// The initial contents of this buffer (its `fill` seed).
    #[serde(default)]
    pub buf: Option<String>,
    /// Index of the first byte in the pattern (default 0).
    #[serde(default)]
    pub at: Option<u64>,
    /// Number of bytes (required for writes; reads take the step's `len`).
    #[serde(default)]
    pub len: Option<u64>,
}

/// A DMA direction by name: `bidirectional`, `to_device`, `from_device`, `none`, or a raw
/// number (an invalid direction on purpose).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum DirSpec {
    Name(DirName),
    Raw(u32),
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DirName {
    Bidirectional,
    ToDevice,
    FromDevice,
    None,
}

/// What a step expects.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// Return value: `true`/`false`, `0`, `-EIO`, `ok` (0), `error` (any negative errno), a
    /// number or an expression.
    #[serde(default)]
    pub ret: Option<Expected>,
    /// The state after the call.
    #[serde(default)]
    pub state: Option<StateExpect>,
    /// The complete ordered event list of the step (`linux` block only).
    #[serde(default)]
    pub events: Option<Vec<EventExpect>>,
    /// Bytes a read returned.
    #[serde(default)]
    pub data: Option<PatternSpec>,
    /// The IOMMU fault a device access met: `none`, `unmapped`, `permission`.
    #[serde(default)]
    pub fault: Option<Expected>,
    /// The set of hazard names the access produced (order-free), or `undefined`; default: none.
    #[serde(default)]
    pub hazards: Option<HazardSet>,
    /// The DMA segments a `dma_map_sg` wrote, in order (exactly `ret` of them).
    #[serde(default)]
    pub sg: Option<Vec<SgExpect>>,
}

#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateExpect {
    #[serde(default)]
    pub addr: Option<Expected>,
    #[serde(default)]
    pub size: Option<Expected>,
    /// The `DMA_IOVA_USE_SWIOTLB` flag.
    #[serde(default)]
    pub use_swiotlb: Option<Expected>,
}

/// End-state expectations (checked after the last step, every profile).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EndExpect {
    /// Number of live IOMMU mapping runs left (default 0).
    #[serde(default)]
    pub live_mappings: Option<Expected>,
    /// States whose IOVA reservation is deliberately never freed (default none).
    #[serde(default)]
    pub leaked_states: Option<Vec<String>>,
    /// Number of live bounce slots left (default 0).
    #[serde(default)]
    pub live_bounce_slots: Option<Expected>,
    /// The misuse checker's codes at the end of the vector (its leaks); omitted, none.
    #[serde(default)]
    pub detected: Option<Vec<String>>,
}

/// Expected hazards: an exact set of names, or `undefined` (not checked).
#[derive(Clone, Debug, PartialEq)]
pub enum HazardSet {
    Exactly(Vec<String>),
    Undefined,
}

impl<'de> Deserialize<'de> for HazardSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HazardSet, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HazardSet;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of hazard names or `undefined`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HazardSet, E> {
                if v == "undefined" {
                    Ok(HazardSet::Undefined)
                } else {
                    Err(E::custom(format!(
                        "expected a list of hazards or `undefined`, found `{v}`"
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HazardSet, A::Error> {
                let mut out = Vec::new();
                while let Some(h) = seq.next_element::<String>()? {
                    out.push(h);
                }
                Ok(HazardSet::Exactly(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for HazardSet {
    fn schema_name() -> Cow<'static, str> {
        "HazardSet".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "array", "items": { "enum": crate::HAZARD_NAMES } },
                { "const": "undefined" }
            ]
        })
    }
}

/// A value a vector writes: an integer, a boolean, or a string (an expression such as
/// `buf.a + 0x600`, an errno name such as `-EIO`, or a keyword such as `ok`).
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    Int(i128),
    Bool(bool),
    Str(String),
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Atom::Int(v) if *v >= 0 => write!(f, "{v:#x}"),
            Atom::Int(v) => write!(f, "{v}"),
            Atom::Bool(b) => write!(f, "{b}"),
            Atom::Str(s) => f.write_str(s),
        }
    }
}

struct AtomVisitor;

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an integer, a boolean or a string")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Atom, E> {
        Ok(Atom::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Atom, E> {
        Ok(Atom::Int(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Atom, E> {
        Ok(Atom::Int(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Atom, E> {
        Ok(Atom::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Atom, E> {
        i128::try_from(v)
            .map(Atom::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Atom, E> {
        Ok(Atom::Str(v.to_string()))
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Atom, D::Error> {
        d.deserialize_any(AtomVisitor)
    }
}

fn atom_schema() -> Schema {
    json_schema!({ "type": ["integer", "boolean", "string"] })
}

impl JsonSchema for Atom {
    fn schema_name() -> Cow<'static, str> {
        "Atom".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        atom_schema()
    }
}

/// An address or length: an integer, or an expression string (`spec/INTERPRETING.md` §
/// "Expressions"). Parsed when the vector runs, where buffers and states are known.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr(pub Atom);

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expr, D::Error> {
        match d.deserialize_any(AtomVisitor)? {
            Atom::Bool(_) => Err(de::Error::custom(
                "expected an integer or an expression, found a boolean",
            )),
            Atom::Int(v) if v < 0 || v > u64::MAX as i128 => Err(de::Error::custom(format!(
                "{v} is out of range for a 64-bit address or length"
            ))),
            Atom::Str(s) => crate::expr::check_syntax(&s)
                .map(|_| Expr(Atom::Str(s)))
                .map_err(de::Error::custom),
            a => Ok(Expr(a)),
        }
    }
}

impl JsonSchema for Expr {
    fn schema_name() -> Cow<'static, str> {
        "Expr".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": "integer", "minimum": 0, "maximum": 18446744073709551615u64 },
                { "type": "string", "minLength": 1 }
            ]
        })
    }
}

/// A graded expectation (`spec/2-outcomes.md` § "Graded expectations").
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// Exactly this value.
    Exact(Atom),
    /// Any of these values; each is allowed by the spec.
    OneOf(Vec<Atom>),
    /// The implementation chooses among these; the report says which it chose.
    ImplementationDefined(Vec<Atom>),
    /// Not checked.
    Undefined,
}

struct ExpectedVisitor;

impl<'de> Visitor<'de> for ExpectedVisitor {
    type Value = Expected;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a value, `undefined`, {one_of: [...]} or {implementation_defined: [...]}")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Expected, E> {
        AtomVisitor.visit_bool(v).map(Expected::Exact)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Expected, E> {
        AtomVisitor.visit_i64(v).map(Expected::Exact)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Expected, E> {
        AtomVisitor.visit_u64(v).map(Expected::Exact)
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Expected, E> {
        AtomVisitor.visit_i128(v).map(Expected::Exact)
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Expected, E> {
        AtomVisitor.visit_u128(v).map(Expected::Exact)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Expected, E> {
        if v == "undefined" {
            Ok(Expected::Undefined)
        } else {
            Ok(Expected::Exact(Atom::Str(v.to_string())))
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Expected, A::Error> {
        let Some(key) = map.next_key::<String>()? else {
            return Err(de::Error::custom(
                "an empty map is not an expectation; use one_of or implementation_defined",
            ));
        };
        let values: Vec<Atom> = map.next_value()?;
        if values.is_empty() {
            return Err(de::Error::custom(format!("{key} needs at least one value")));
        }
        let out = match key.as_str() {
            "one_of" => Expected::OneOf(values),
            "implementation_defined" => Expected::ImplementationDefined(values),
            other => {
                return Err(de::Error::unknown_field(
                    other,
                    &["one_of", "implementation_defined"],
                ))
            }
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "unexpected key `{extra}`: an expectation map has exactly one key"
            )));
        }
        Ok(out)
    }
}

impl<'de> Deserialize<'de> for Expected {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Expected, D::Error> {
        d.deserialize_any(ExpectedVisitor)
    }
}

impl JsonSchema for Expected {
    fn schema_name() -> Cow<'static, str> {
        "Expected".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "anyOf": [
                { "type": ["integer", "boolean", "string"] },
                {
                    "type": "object",
                    "properties": { "one_of": { "type": "array", "minItems": 1,
                        "items": { "type": ["integer", "boolean", "string"] } } },
                    "required": ["one_of"],
                    "additionalProperties": false
                },
                {
                    "type": "object",
                    "properties": { "implementation_defined": { "type": "array", "minItems": 1,
                        "items": { "type": ["integer", "boolean", "string"] } } },
                    "required": ["implementation_defined"],
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// One expected event: `{iommu.map: {iova: ..., len: ...}}`, or `{warn: CODE}`.
/// Fields left out are not compared, except `ret`, which defaults to 0.
#[derive(Clone, Debug, PartialEq)]
pub struct EventExpect {
    pub kind: String,
    pub fields: BTreeMap<String, Expected>,
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = EventExpect;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a one-key map {EVENT_KIND: {field: value, ...}}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EventExpect, A::Error> {
        let Some(kind) = map.next_key::<String>()? else {
            return Err(de::Error::custom("an event needs its kind as the key"));
        };
        let fields = if kind == "warn" {
            let code: String = map.next_value()?;
            BTreeMap::from([("code".to_string(), Expected::Exact(Atom::Str(code)))])
        } else {
            map.next_value::<Option<BTreeMap<String, Expected>>>()?
                .unwrap_or_default()
        };
        if let Some(extra) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "unexpected key `{extra}`: write one event per list item"
            )));
        }
        Ok(EventExpect { kind, fields })
    }
}

impl<'de> Deserialize<'de> for EventExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<EventExpect, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}

impl JsonSchema for EventExpect {
    fn schema_name() -> Cow<'static, str> {
        "EventExpect".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "properties": { "warn": { "type": "string" } },
            "propertyNames": { "enum": crate::model::EVENT_KINDS },
            "additionalProperties": { "type": ["object", "null"] }
        })
    }
}

/// The closed list of event kinds (`spec/2-outcomes.md` § "Events").
pub const EVENT_KINDS: &[&str] = &[
    "iommu.map",
    "iommu.unmap",
    "iotlb.sync_map",
    "iotlb.sync",
    "iotlb.flush_all",
    "iotlb.table_flush",
    "cache.sync_for_device",
    "cache.sync_for_cpu",
    "cache.barrier",
    "swiotlb.alloc",
    "swiotlb.free",
    "bounce.copy",
    "bounce.fill",
    "warn",
];

/// The fields of each event kind, in the order traces and diffs show them.
pub const EVENT_FIELDS: &[(&str, &[&str])] = &[
    ("iommu.map", &["iova", "phys", "len", "prot", "ret"]),
    ("iommu.unmap", &["iova", "len", "unmapped"]),
    ("iotlb.sync_map", &["iova", "len", "ret"]),
    ("iotlb.sync", &["iova", "len"]),
    ("iotlb.flush_all", &[]),
    ("iotlb.table_flush", &["iova", "len"]),
    ("cache.sync_for_device", &["phys", "len", "dir"]),
    ("cache.sync_for_cpu", &["phys", "len", "dir"]),
    ("cache.barrier", &[]),
    (
        "swiotlb.alloc",
        &["orig", "len", "align_mask", "min_align_mask", "slot", "ret"],
    ),
    ("swiotlb.free", &["slot", "len"]),
    ("bounce.copy", &["from", "to", "len"]),
    ("bounce.fill", &["to", "byte", "len"]),
    ("warn", &["code"]),
];

/// `platform:` — a preset name, a list of presets (the expectations hold on each), or a map
/// with `preset` and overrides (or a list of such maps).
#[derive(Clone, Debug)]
pub struct PlatformSpec(pub Vec<PlatformChoice>);

/// A preset and the fields a vector overrides (`spec/1-platform.md` § "Presets").
#[derive(Clone, Debug, Default, Deserialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlatformChoice {
    pub preset: String,
    #[serde(default)]
    pub coherent: Option<bool>,
    #[serde(default)]
    pub untrusted: Option<bool>,
    #[serde(default)]
    pub pci: Option<bool>,
    #[serde(default)]
    pub forcedac: Option<bool>,
    #[serde(default)]
    pub dma_mask: Option<u64>,
    #[serde(default)]
    pub bus_dma_limit: Option<u64>,
    #[serde(default)]
    pub min_align_mask: Option<u64>,
    #[serde(default)]
    pub domain: Option<DomainName>,
    #[serde(default)]
    pub needs_sync_map: Option<bool>,
    #[serde(default)]
    pub pgsize_bitmap: Option<u64>,
    #[serde(default)]
    pub aperture_end: Option<u64>,
    #[serde(default)]
    pub nr_cpus: Option<u32>,
    /// The `swiotlb=` boot parameter: the bounce pool's size in 2 KiB slots (Linux rounds it
    /// up to a power of two of at least 128 per area).
    #[serde(default)]
    pub swiotlb_nslabs: Option<u64>,
    /// `dma_get_max_seg_size(dev)` (`dma_set_max_seg_size`).
    #[serde(default)]
    pub max_seg_size: Option<u32>,
    /// `dma_get_seg_boundary(dev)` (`dma_set_seg_boundary`).
    #[serde(default)]
    pub seg_boundary_mask: Option<u64>,
    /// `swiotlb=force` (or a restricted DMA pool): dma-direct bounces every RAM mapping.
    #[serde(default)]
    pub swiotlb_force: Option<bool>,
    /// A `dma_range_map` offset on dma-direct: the bus address is `phys - dma_offset`.
    #[serde(default)]
    pub dma_offset: Option<u64>,
    /// `dma_get_cache_alignment()` (arm64: `CTR_EL0.CWG`), which the kmalloc rule of LINK-04
    /// compares the kmalloc size class with.
    #[serde(default)]
    pub cache_line: Option<u64>,
    /// Whether the bounce pool exists (`is_swiotlb_active`); false models a kernel whose pool
    /// was never set up (x86 with little RAM, `swiotlb=noforce`).
    #[serde(default)]
    pub swiotlb: Option<bool>,
}

#[derive(Clone, Copy, Debug, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DomainName {
    None,
    Identity,
    Dma,
    DmaFq,
}

struct PlatformVisitor;

impl<'de> Visitor<'de> for PlatformVisitor {
    type Value = PlatformSpec;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a preset name, a list of presets, or {preset: NAME, overrides...}")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<PlatformSpec, E> {
        Ok(PlatformSpec(vec![PlatformChoice {
            preset: v.to_string(),
            ..PlatformChoice::default()
        }]))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PlatformSpec, A::Error> {
        let mut out = Vec::new();
        while let Some(one) = seq.next_element::<PlatformSpec>()? {
            out.extend(one.0);
        }
        if out.is_empty() {
            return Err(de::Error::custom("an empty platform list"));
        }
        Ok(PlatformSpec(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PlatformSpec, A::Error> {
        let choice = PlatformChoice::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(PlatformSpec(vec![choice]))
    }
}

impl<'de> Deserialize<'de> for PlatformSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PlatformSpec, D::Error> {
        d.deserialize_any(PlatformVisitor)
    }
}

impl JsonSchema for PlatformSpec {
    fn schema_name() -> Cow<'static, str> {
        "PlatformSpec".into()
    }
    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let choice = generator.subschema_for::<PlatformChoice>();
        json_schema!({
            "anyOf": [
                { "type": "string" },
                choice,
                { "type": "array", "minItems": 1, "items": { "anyOf": [ { "type": "string" }, choice ] } }
            ]
        })
    }
}

/// A vector file is a header document followed by vector documents; the schema accepts either.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Document {
    Header(Header),
    Vector(Box<Vector>),
}

/// The JSON Schema of a vector-file document, as committed in `spec/vector.schema.json`.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Document);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}
