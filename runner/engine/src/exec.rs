//! Executing a vector: place buffers, drive the implementation step by step through the
//! machine, and record what happened (the trace). Judging the trace is `compare.rs`'s job.
//!
//! Data flows one way: vector -> engine -> implementation -> platform interface -> machine ->
//! events -> trace. The engine owns the `IovaState`s, exactly as a driver owns its
//! `struct dma_iova_state`.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use dmaconf_machine::{DeviceAccess, Event, FaultReason, FieldValue, Hazard, Machine};
use dmaconf_platform::{
    p2p, Attrs, Dir, DmaApi, IovaState, Platform, PlatformFacts, RegionKind, SgEntry,
    DMA_IOVA_USE_SWIOTLB, DMA_MAPPING_ERROR,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::expr::{self, Symbols};
use crate::fail_nth::{FailPlan, Held, Hit, Injecting};
use crate::fault::DoorFault;
use crate::implementation::Implementation;
use crate::load::action_name;
use crate::model::{
    DirName, DirSpec, Expr, MemoryKindName, PatternSpec, PlatformChoice, Step, Vector,
};
use crate::pattern;
use crate::preset::Presets;

/// Where buffers go in the simulated physical map: 16 MiB apart from 1 GiB up, so that no two
/// buffers share a 2 MiB page and none sits in the bounce pool.
const BUFFER_BASE: u64 = 0x4000_0000;
const BUFFER_STRIDE: u64 = 0x100_0000;

/// Formats an address or length the way traces and reports show it.
pub fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// What a call returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Ret {
    Bool(bool),
    Errno(i32),
    Value(String),
    /// A name (`pci_p2pdma_state`'s map type).
    Name(String),
    /// `dma_map_sg`: the count (or -errno) and the DMA segments written.
    Sg(SgRet),
}

/// What a `dma_map_sg` returned: `ret` and the first `ret` entries' DMA address and length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SgRet {
    pub ret: i32,
    #[serde(serialize_with = "sg_hex")]
    pub sg: Vec<(u64, u64)>,
}

/// The state as observed after a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateView {
    pub addr: String,
    pub size: String,
    pub use_swiotlb: bool,
}

impl StateView {
    fn of(s: &IovaState) -> StateView {
        StateView {
            addr: hex(s.addr),
            size: hex(s.size & !DMA_IOVA_USE_SWIOTLB),
            use_swiotlb: s.size & DMA_IOVA_USE_SWIOTLB != 0,
        }
    }
}

/// Bytes a read returned: shown as a length, the first bytes and a digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataView {
    pub len: usize,
    pub head: String,
    pub fnv64: String,
    #[serde(skip)]
    pub bytes: Vec<u8>,
}

impl DataView {
    pub fn of(bytes: Vec<u8>) -> DataView {
        let head: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
        let digest = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        DataView {
            len: bytes.len(),
            head,
            fnv64: hex(digest),
            bytes,
        }
    }
}

/// One executed step.
#[derive(Clone, Debug, Serialize)]
pub struct StepTrace {
    pub index: usize,
    pub action: String,
    pub args: BTreeMap<String, String>,
    pub cpu: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<StateView>,
    pub events: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<DataView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hazards: Vec<String>,
    /// The step could not run (bad expression, crash): what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Set by a door that ran the step but could not observe its outcome (e.g. a device that
    /// cannot reach the address); the step's observations are then not judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unobserved: Option<String>,
    /// The misuse checker's findings at this step (`CHECK-NN`, spec/10-misuse-checker.md).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detected: Vec<String>,
    /// `i` of a repeated step's run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetition: Option<u64>,
    #[serde(skip)]
    pub raw_events: Vec<Event>,
    /// Every state's (addr, size word) after the step, for evaluating expectations.
    #[serde(skip)]
    pub states_after: BTreeMap<String, (u64, u64)>,
}

fn sg_hex<S: serde::Serializer>(v: &[(u64, u64)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for (dma, len) in v {
        seq.serialize_element(&serde_json::json!({"dma": hex(*dma), "len": hex(*len)}))?;
    }
    seq.end()
}

impl StepTrace {
    /// A step that has not produced anything yet; a door fills in what it observed.
    pub fn new(index: usize, action: &str, cpu: u32) -> StepTrace {
        StepTrace {
            index,
            action: action.to_string(),
            args: BTreeMap::new(),
            cpu,
            ret: None,
            state: None,
            events: Vec::new(),
            data: None,
            fault: None,
            hazards: Vec::new(),
            error: None,
            unobserved: None,
            detected: Vec::new(),
            repetition: None,
            raw_events: Vec::new(),
            states_after: BTreeMap::new(),
        }
    }
}

/// A reservation the engine saw `try_alloc` hand out, for leak and overlap judgement.
#[derive(Clone, Debug, Serialize)]
pub struct Reservation {
    pub state: String,
    pub base: String,
    pub len: String,
    #[serde(skip)]
    pub range: (u64, u64),
    pub freed: bool,
}

/// What was left at the end.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EndView {
    pub mappings: Vec<Value>,
    pub stale_translations: Vec<Value>,
    pub bounce_slots: Vec<Value>,
    pub reservations: Vec<Reservation>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_modelled: Vec<String>,
    /// The misuse checker's findings at the end (leaks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detected: Vec<String>,
    /// The misuse checker ran over this run's trace (its `detected` are then judged).
    #[serde(skip)]
    pub checked: bool,
}

/// How one run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Stop {
    Completed,
    /// The implementation crashed: a panic in process, or a door's crash fault (a signal, an exit).
    Crash(String),
    /// The vector could not be executed as written (harness error).
    Harness(String),
    /// The door cannot express this vector on its platform (the reason says what is missing).
    NotSupported(String),
    /// The implementation or its machine did not finish in time.
    Timeout(String),
}

/// The trace of one vector on one preset.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub preset: String,
    /// Set by doors that see less than the simulated machine records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observes: Option<crate::door::Observes>,
    pub buffers: BTreeMap<String, String>,
    pub steps: Vec<StepTrace>,
    pub end: EndView,
    pub stop: Stop,
    #[serde(skip)]
    pub facts: Option<PlatformFacts>,
    #[serde(skip)]
    pub reserved: Vec<(u64, u64)>,
    #[serde(skip)]
    pub buffer_places: BTreeMap<String, (u64, u64)>,
    #[serde(skip)]
    pub mapping_count: usize,
    #[serde(skip)]
    pub bounce_count: usize,
    /// The bounce pool's first slot, for `pool` in expressions (None: no pool, or the door
    /// does not know where it lies).
    #[serde(skip)]
    pub pool: Option<u64>,
}

/// Everything the engine observed for one vector, one run per preset.
#[derive(Clone, Debug, Serialize)]
pub struct Execution {
    pub runs: Vec<Run>,
}

impl Execution {
    /// One run per preset the vector names, each ended by `stop` before it started: what a door
    /// that cannot reach its implementation at all reports for every vector.
    pub fn stopped(vector: &Vector, stop: Stop) -> Execution {
        let mut presets: Vec<String> = vector
            .platform
            .as_ref()
            .map(|p| p.0.iter().map(|c| c.preset.clone()).collect())
            .unwrap_or_default();
        if presets.is_empty() {
            presets.push("-".into());
        }
        let run = |preset| Run {
            preset,
            observes: None,
            buffers: BTreeMap::new(),
            steps: Vec::new(),
            end: EndView::default(),
            stop: stop.clone(),
            facts: None,
            reserved: Vec::new(),
            pool: None,
            buffer_places: BTreeMap::new(),
            mapping_count: 0,
            bounce_count: 0,
        };
        Execution {
            runs: presets.into_iter().map(run).collect(),
        }
    }
}

/// The symbols of a run as it stands after a given step (for judging).
pub struct RunSymbols<'a> {
    pub buffers: &'a BTreeMap<String, (u64, u64)>,
    pub states: BTreeMap<String, (u64, u64)>,
    pub granule: u64,
    pub pool: Option<u64>,
    /// `i` of a repeated step.
    pub index: Option<u64>,
}

impl Symbols for RunSymbols<'_> {
    fn buffer(&self, name: &str) -> Option<(u64, u64)> {
        self.buffers.get(name).copied()
    }
    fn state(&self, name: &str) -> Option<(u64, u64)> {
        self.states.get(name).copied()
    }
    fn granule(&self) -> u64 {
        self.granule
    }
    fn pool(&self) -> Option<u64> {
        self.pool
    }
    fn index(&self) -> Option<u64> {
        self.index
    }
}

fn event_json(e: &Event) -> Value {
    let mut m = Map::new();
    m.insert("event".into(), Value::String(e.name().into()));
    for (k, v) in e.fields() {
        let v = match v {
            FieldValue::U64(x) => Value::String(hex(x)),
            FieldValue::I64(x) => Value::from(x),
            FieldValue::Str(s) => Value::String(s),
        };
        m.insert(k.into(), v);
    }
    Value::Object(m)
}

fn to_value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Mappings and other machine records are shown with hex numbers, like events.
fn hexify(v: Value) -> Value {
    match v {
        Value::Number(n) => n
            .as_u64()
            .map(|x| Value::String(hex(x)))
            .unwrap_or(Value::Number(n)),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, hexify(v))).collect()),
        Value::Array(a) => Value::Array(a.into_iter().map(hexify).collect()),
        other => other,
    }
}

fn dir_of(d: &DirSpec) -> Dir {
    match d {
        DirSpec::Name(DirName::Bidirectional) => Dir::BIDIRECTIONAL,
        DirSpec::Name(DirName::ToDevice) => Dir::TO_DEVICE,
        DirSpec::Name(DirName::FromDevice) => Dir::FROM_DEVICE,
        DirSpec::Name(DirName::None) => Dir::NONE,
        DirSpec::Raw(v) => Dir(*v),
    }
}

fn attrs_of(names: &[String]) -> Attrs {
    names
        .iter()
        .filter_map(|n| Attrs::from_name(n))
        .fold(Attrs(0), |a, b| a | b)
}

/// Bytes of a pattern; `len` comes from the pattern or from the caller (reads).
pub fn pattern_bytes(
    p: &PatternSpec,
    len: Option<u64>,
    fills: &BTreeMap<String, u64>,
) -> Result<Vec<u8>, String> {
    let len = p.len.or(len).ok_or("a written pattern needs `len`")?;
    if len > MAX_ACCESS {
        return Err(format!(
            "{len:#x} bytes is more than one access may move ({MAX_ACCESS:#x})"
        ));
    }
    let at = p.at.unwrap_or(0);
    match (p.seed, p.byte, &p.buf) {
        (Some(seed), None, None) => Ok(pattern::bytes(seed, at, len)),
        (None, Some(b), None) => Ok(vec![b; len as usize]),
        (None, None, Some(name)) => fills
            .get(name)
            .map(|seed| pattern::bytes(*seed, at, len))
            .ok_or_else(|| format!("no buffer `{name}` with a `fill` in this vector")),
        _ => Err("a pattern has exactly one of `seed`, `byte`, `buf`".into()),
    }
}

/// The largest single device or CPU access a vector may make (keeps memory bounded).
pub const MAX_ACCESS: u64 = 16 << 20;

/// Runs a vector on every preset it names.
pub fn execute(vector: &Vector, presets: &Presets, implementation: &Implementation) -> Execution {
    let choices = vector
        .platform
        .as_ref()
        .map(|p| p.0.clone())
        .unwrap_or_default();
    Execution {
        runs: choices
            .iter()
            .map(|c| {
                let mut run = execute_on(vector, c, presets, implementation, &mut None, &mut None);
                if implementation.check {
                    crate::check::annotate(vector, &mut run);
                }
                run
            })
            .collect(),
    }
}

/// Executes `vector` on each preset with the `fail_at`-th fallible platform call of each run
/// failed (0: none, only counted), stopping after the step that met it (`fail_nth.rs`).
pub fn execute_failing(
    vector: &Vector,
    presets: &Presets,
    implementation: &Implementation,
    fail_at: u64,
) -> Vec<(Run, FailPlan, Option<Hit>)> {
    vector
        .platform
        .iter()
        .flat_map(|p| &p.0)
        .map(|c| {
            let mut plan = Some(FailPlan {
                fail_at,
                ..FailPlan::default()
            });
            let mut hit = None;
            let run = execute_on(vector, c, presets, implementation, &mut plan, &mut hit);
            (run, plan.unwrap_or_default(), hit)
        })
        .collect()
}

struct Runner<'a> {
    machine: Machine,
    api: Box<dyn DmaApi>,
    states: BTreeMap<String, IovaState>,
    buffers: BTreeMap<String, (u64, u64)>,
    fills: BTreeMap<String, u64>,
    granule: u64,
    pool: Option<u64>,
    reservations: Vec<Reservation>,
    now_ns: u64,
    /// Scatterlists as the last `dma_map_sg` left them, for `dma_unmap_sg`.
    sg_lists: BTreeMap<String, Vec<SgEntry>>,
    /// How the last implementation call failed, when it did (a panic or a door fault).
    fault: Option<DoorFault>,
    /// `--fail-nth`: which fallible platform call fails, and the count so far.
    inject: Option<FailPlan>,
    /// `i` while a repeated step runs.
    index: Option<u64>,
    _vector: &'a Vector,
}

fn execute_on(
    vector: &Vector,
    choice: &PlatformChoice,
    presets: &Presets,
    implementation: &Implementation,
    inject: &mut Option<FailPlan>,
    hit: &mut Option<Hit>,
) -> Run {
    let mut run = Run {
        preset: choice.preset.clone(),
        observes: None,
        buffers: BTreeMap::new(),
        steps: Vec::new(),
        end: EndView::default(),
        stop: Stop::Completed,
        facts: None,
        reserved: Vec::new(),
        buffer_places: BTreeMap::new(),
        mapping_count: 0,
        bounce_count: 0,
        pool: None,
    };
    let config = match presets.configure(choice) {
        Ok(c) => c,
        Err(e) => {
            run.stop = Stop::Harness(e);
            return run;
        }
    };
    run.facts = Some(config.facts);
    run.pool = config.swiotlb.as_ref().map(|s| s.base);
    // TRYALLOC-07 item 5: the regions that apply to this device. Host-bridge windows and
    // dma-range gaps exist only for a PCI device (IOVA-05).
    let pci_only = |k| matches!(k, RegionKind::PciWindow | RegionKind::DmaRangeGap);
    run.reserved = config
        .reserved
        .iter()
        .filter(|r| config.facts.pci || !pci_only(r.kind))
        .map(|r| (r.start, r.end))
        .collect();
    let granule = config.facts.granule();
    let mut machine = Machine::new(config);

    // Place buffers and write their initial contents (set-up, not events).
    let mut buffers = BTreeMap::new();
    let mut fills = BTreeMap::new();
    for (i, (name, b)) in vector.buffers.iter().enumerate() {
        if b.size > BUFFER_STRIDE - 0x1000 && b.at.is_none() {
            run.stop = Stop::Harness(format!(
                "buffer `{name}`: {:#x} bytes is larger than the runner places ({:#x})",
                b.size,
                BUFFER_STRIDE - 0x1000
            ));
            return run;
        }
        let phys =
            b.at.unwrap_or(BUFFER_BASE + i as u64 * BUFFER_STRIDE + (b.offset & 0xFFF));
        if let Some(seed) = b.fill {
            if b.size > MAX_ACCESS {
                // The loader refuses this; a vector built in code must not run half-filled.
                run.stop = Stop::Harness(format!(
                    "buffer `{name}`: a `fill` covers at most {MAX_ACCESS:#x} bytes"
                ));
                return run;
            }
            machine.mem_write(phys, &pattern::bytes(seed, 0, b.size));
            fills.insert(name.clone(), seed);
        }
        let p2p_type = match b.kind.unwrap_or(MemoryKindName::Ram) {
            MemoryKindName::Ram => None,
            MemoryKindName::Mmio => Some(p2p::NONE),
            MemoryKindName::P2pBusAddr => Some(p2p::BUS_ADDR),
            MemoryKindName::P2pThruHostBridge => Some(p2p::THRU_HOST_BRIDGE),
            MemoryKindName::P2pNotSupported => Some(p2p::NOT_SUPPORTED),
        };
        if let Some(p2p_type) = p2p_type {
            // The whole pages the buffer touches are the peer's BAR (or the MMIO range).
            let start = phys & !0xFFF;
            let end = phys.saturating_add(b.size).saturating_add(0xFFF) & !0xFFF;
            machine.set_memory_kind(dmaconf_machine::MemoryKind {
                phys: start,
                len: end - start,
                p2p_type,
                bus_offset: b.bus_offset.unwrap_or(0),
                mmio: true,
            });
        }
        buffers.insert(name.clone(), (phys, b.size));
        run.buffers.insert(name.clone(), hex(phys));
    }
    run.buffer_places = buffers.clone();

    let mut runner = Runner {
        machine,
        api: implementation.instance(),
        states: BTreeMap::new(),
        buffers,
        fills,
        granule,
        pool: run.pool,
        reservations: Vec::new(),
        now_ns: 0,
        sg_lists: BTreeMap::new(),
        fault: None,
        inject: None,
        index: None,
        _vector: vector,
    };

    // Device probe: the implementation sets up its domain.
    let probe = {
        let Runner { machine, api, .. } = &mut runner;
        catch_unwind(AssertUnwindSafe(|| api.probe(machine)))
    };
    match probe {
        Ok(0) => {}
        Ok(e) => {
            run.stop = Stop::Harness(format!(
                "probe failed with {}",
                dmaconf_platform::errno::name(e)
            ));
            return run;
        }
        Err(p) => {
            run.stop = DoorFault::from_payload(p).stop("probe");
            return run;
        }
    }
    let _ = runner.machine.take_events();
    // Injection starts with the first step: the probe is the device's set-up, not the API.
    runner.inject = inject.take();

    // A step with `repeat: N` runs N times, `i` counting 0..N (spec/INTERPRETING.md §
    // "Repetition"); its traces all carry the step's index.
    let expanded = vector.steps.iter().enumerate().flat_map(|(index, step)| {
        let times = step.value.repeat.unwrap_or(1);
        (0..times).map(move |k| (index, step, step.value.repeat.map(|_| k)))
    });
    for (index, step, repetition) in expanded {
        let before = runner.inject.as_ref().map(|_| Held::of(&runner.machine));
        runner.index = repetition;
        let mut trace = runner.step(index, &step.value);
        trace.repetition = repetition;
        let stop = trace.error.clone();
        let failed_here = runner
            .inject
            .as_ref()
            .and_then(|p| p.failed)
            .filter(|_| hit.is_none());
        if let (Some(call), Some(before)) = (failed_here, before) {
            *hit = Some(Hit {
                step: index + 1,
                line: step.line,
                action: trace.action.clone(),
                call,
                ret: trace.ret.clone(),
                before,
                after: Held::of(&runner.machine),
                stopped: stop.clone(),
            });
        }
        run.steps.push(trace);
        if failed_here.is_some() {
            // The rest of the vector assumes the call succeeded.
            break;
        }
        if let Some(e) = stop {
            let action = action_name(&step.value).unwrap_or("?");
            // Counted from 1 and placed at the step's own line, as a reader finds it.
            let context = format!("step {} ({action}, line {})", index + 1, step.line);
            // A fault of the implementation (a panic, or a door's typed fault) carries its
            // class; any other step error is the vector's (harness_error).
            run.stop = match runner.fault.take() {
                Some(fault) => fault.stop(&context),
                None => Stop::Harness(format!("{context}: {e}")),
            };
            break;
        }
    }
    *inject = runner.inject.take();

    let m = &runner.machine;
    let mappings = m.mappings();
    run.mapping_count = mappings.len();
    run.end.mappings = mappings.iter().map(|x| hexify(to_value(x))).collect();
    run.end.stale_translations = m
        .stale_translations()
        .into_iter()
        .map(|(iova, len)| serde_json::json!({"iova": hex(iova), "len": hex(len)}))
        .collect();
    let slots = m.live_bounce_slots();
    run.bounce_count = slots.len();
    run.end.bounce_slots = slots
        .into_iter()
        .map(|(slot, len)| serde_json::json!({"slot": hex(slot), "len": hex(len)}))
        .collect();
    run.end.reservations = runner.reservations;
    run.end.not_modelled = m.not_modelled().iter().map(|s| s.to_string()).collect();
    run
}

impl Runner<'_> {
    fn symbols(&self) -> RunSymbols<'_> {
        RunSymbols {
            buffers: &self.buffers,
            states: self
                .states
                .iter()
                .map(|(k, s)| (k.clone(), (s.addr, s.size)))
                .collect(),
            granule: self.granule,
            pool: self.pool,
            index: self.index,
        }
    }

    fn eval(&self, e: &Expr) -> Result<u64, String> {
        expr::eval(e, &self.symbols())
    }

    /// Runs `f` on the implementation with the machine as its platform, catching panics.
    fn call_api<T>(
        &mut self,
        f: impl FnOnce(&mut dyn DmaApi, &mut dyn Platform) -> T,
    ) -> Result<T, String> {
        let Runner {
            machine,
            api,
            inject,
            ..
        } = self;
        catch_unwind(AssertUnwindSafe(|| match inject {
            Some(plan) => f(
                api.as_mut(),
                &mut Injecting {
                    inner: machine,
                    plan,
                },
            ),
            None => f(api.as_mut(), machine),
        }))
        .map_err(|p| {
            let fault = DoorFault::from_payload(p);
            let text = fault.detail.clone();
            self.fault = Some(fault);
            text
        })
    }

    /// Like [`Runner::call_api`], handing the named state to the call and keeping what it
    /// leaves there.
    fn call<T>(
        &mut self,
        state: &str,
        f: impl FnOnce(&mut dyn DmaApi, &mut dyn Platform, &mut IovaState) -> T,
    ) -> Result<(T, IovaState), String> {
        let mut st = self.states.get(state).copied().unwrap_or_default();
        let out = self.call_api(|api, m| f(api, m, &mut st))?;
        self.states.insert(state.to_string(), st);
        Ok((out, st))
    }

    fn step(&mut self, index: usize, step: &Step) -> StepTrace {
        let cpu = step.cpu.unwrap_or(0);
        self.machine.set_cpu(cpu);
        let mut t = StepTrace::new(index, action_name(step).unwrap_or("?"), cpu);
        if let Err(e) = self.act(step, &mut t) {
            t.error = Some(e);
        }
        t.raw_events = self.machine.take_events();
        t.events = t.raw_events.iter().map(event_json).collect();
        t.states_after = self.symbols().states;
        t
    }

    fn act(&mut self, step: &Step, t: &mut StepTrace) -> Result<(), String> {
        let arg = |t: &mut StepTrace, k: &str, v: u64| {
            t.args.insert(k.to_string(), hex(v));
            v
        };
        if let Some(a) = &step.dma_iova_try_alloc {
            let phys = arg(t, "phys", self.eval(&a.phys)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            t.args.insert("state".into(), a.state.clone());
            let (ok, st) = self.call(&a.state, |api, m, s| api.iova_try_alloc(m, s, phys, size))?;
            t.ret = Some(Ret::Bool(ok));
            t.state = Some(StateView::of(&st));
            if ok {
                self.reserve(&a.state, &st, phys);
            }
        } else if let Some(a) = &step.dma_iova_link {
            let phys = arg(t, "phys", self.eval(&a.phys)?);
            let offset = arg(t, "offset", self.eval(&a.offset)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            self.note_dir_attrs(t, &a.state, dir, attrs);
            let (r, st) = self.call(&a.state, |api, m, s| {
                api.iova_link(m, s, phys, offset, size, dir, attrs)
            })?;
            t.ret = Some(Ret::Errno(r));
            t.state = Some(StateView::of(&st));
        } else if let Some(a) = &step.dma_iova_sync {
            let offset = arg(t, "offset", self.eval(&a.offset)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            t.args.insert("state".into(), a.state.clone());
            let (r, st) = self.call(&a.state, |api, m, s| api.iova_sync(m, s, offset, size))?;
            t.ret = Some(Ret::Errno(r));
            t.state = Some(StateView::of(&st));
        } else if let Some(a) = &step.dma_iova_unlink {
            let offset = arg(t, "offset", self.eval(&a.offset)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            self.note_dir_attrs(t, &a.state, dir, attrs);
            let (_, st) = self.call(&a.state, |api, m, s| {
                api.iova_unlink(m, s, offset, size, dir, attrs)
            })?;
            t.state = Some(StateView::of(&st));
        } else if let Some(a) = &step.dma_iova_destroy {
            let len = arg(t, "mapped_len", self.eval(&a.mapped_len)?);
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            self.note_dir_attrs(t, &a.state, dir, attrs);
            let (_, st) = self.call(&a.state, |api, m, s| {
                api.iova_destroy(m, s, len, dir, attrs)
            })?;
            t.state = Some(StateView::of(&st));
            self.release(&a.state);
        } else if let Some(a) = &step.dma_iova_free {
            t.args.insert("state".into(), a.state.clone());
            let (_, st) = self.call(&a.state, |api, m, s| api.iova_free(m, s))?;
            t.state = Some(StateView::of(&st));
            self.release(&a.state);
        } else if let Some(a) = &step.dma_use_iova {
            t.args.insert("state".into(), a.state.clone());
            let (b, st) = self.call(&a.state, |api, _, s| api.use_iova(s))?;
            t.ret = Some(Ret::Bool(b));
            t.state = Some(StateView::of(&st));
        } else if let Some(a) = &step.dma_iova_size {
            t.args.insert("state".into(), a.state.clone());
            let (v, st) = self.call(&a.state, |api, _, s| api.iova_size(s))?;
            t.ret = Some(Ret::Value(hex(v)));
            t.state = Some(StateView::of(&st));
        } else if let Some(a) = &step.device_read {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let len = arg(t, "len", self.eval(&a.len)?);
            if len > MAX_ACCESS {
                return Err(format!("{len:#x} bytes is more than one access may move"));
            }
            let acc = self.machine.device_read(addr, len);
            self.record_access(t, acc);
        } else if let Some(a) = &step.device_write {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let bytes = pattern_bytes(&a.data, None, &self.fills)?;
            t.args.insert("len".into(), hex(bytes.len() as u64));
            let acc = self.machine.device_write(addr, &bytes);
            self.record_access(t, acc);
        } else if let Some(a) = &step.cpu_read {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let len = arg(t, "len", self.eval(&a.len)?);
            if len > MAX_ACCESS {
                return Err(format!("{len:#x} bytes is more than one access may move"));
            }
            let (bytes, hazards) = self.machine.cpu_read(addr, len);
            t.data = Some(DataView::of(bytes));
            t.hazards = hazards.iter().map(|h| h.name().to_string()).collect();
        } else if let Some((a, entry)) = step
            .dma_map_phys
            .as_ref()
            .map(|a| (a, MapEntry::Phys))
            .or(step
                .dma_map_page_attrs
                .as_ref()
                .map(|a| (a, MapEntry::Page)))
            .or(step
                .dma_map_resource
                .as_ref()
                .map(|a| (a, MapEntry::Resource)))
        {
            let phys = arg(t, "phys", self.eval(&a.phys)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            self.note_dir_attrs(t, &a.handle, dir, attrs);
            t.args.remove("state");
            t.args.insert("handle".into(), a.handle.clone());
            let addr = self.call_api(|api, m| match entry {
                MapEntry::Phys => api.map_phys(m, phys, size, dir, attrs),
                MapEntry::Page => api.map_page_attrs(m, phys, size, dir, attrs),
                MapEntry::Resource => api.map_resource(m, phys, size, dir, attrs),
            })?;
            // The handle keeps the DMA address for `HANDLE.dma` (and its size).
            self.states
                .insert(a.handle.clone(), IovaState { addr, size });
            t.ret = Some(Ret::Value(hex(addr)));
        } else if let Some((a, entry)) = step
            .dma_unmap_phys
            .as_ref()
            .map(|a| (a, MapEntry::Phys))
            .or(step
                .dma_unmap_page_attrs
                .as_ref()
                .map(|a| (a, MapEntry::Page)))
            .or(step
                .dma_unmap_resource
                .as_ref()
                .map(|a| (a, MapEntry::Resource)))
        {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            t.args.insert("dir".into(), dir.name().to_string());
            if attrs.0 != 0 {
                t.args.insert("attrs".into(), hex(attrs.0));
            }
            self.call_api(|api, m| match entry {
                MapEntry::Phys => api.unmap_phys(m, addr, size, dir, attrs),
                MapEntry::Page => api.unmap_page_attrs(m, addr, size, dir, attrs),
                MapEntry::Resource => api.unmap_resource(m, addr, size, dir, attrs),
            })?;
        } else if let Some(a) = &step.dma_need_sync {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let b = self.call_api(|api, m| api.need_sync(m, addr))?;
            t.ret = Some(Ret::Bool(b));
        } else if let Some(a) = step
            .dma_sync_single_for_cpu
            .as_ref()
            .or(step.dma_sync_single_for_device.as_ref())
        {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            let dir = dir_of(&a.dir);
            t.args.insert("dir".into(), dir.name().to_string());
            let for_cpu = step.dma_sync_single_for_cpu.is_some();
            self.call_api(|api, m| {
                if for_cpu {
                    api.sync_single_for_cpu(m, addr, size, dir)
                } else {
                    api.sync_single_for_device(m, addr, size, dir)
                }
            })?;
        } else if let Some(a) = &step.pci_p2pdma_state {
            let phys = arg(t, "phys", self.eval(&a.phys)?);
            t.ret = Some(Ret::Name(
                p2p::name(self.machine.p2p_type(phys)).to_string(),
            ));
        } else if let Some(a) = &step.dma_map_sg {
            let mut segs = Vec::new();
            for (i, s) in a.segs.iter().enumerate() {
                let phys = arg(t, &format!("seg{i}.phys"), self.eval(&s.phys)?);
                let len = arg(t, &format!("seg{i}.len"), self.eval(&s.len)?);
                segs.push(SgEntry {
                    phys,
                    len,
                    dma_address: DMA_MAPPING_ERROR,
                    dma_len: 0,
                    flags: 0,
                });
            }
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            self.note_dir_attrs(t, &a.list, dir, attrs);
            t.args.remove("state");
            t.args.insert("list".into(), a.list.clone());
            let ret = self.call_api(|api, m| api.map_sg(m, &mut segs, dir, attrs))?;
            let mut out = SgRet {
                ret,
                sg: Vec::new(),
            };
            // DMA segment i is `LIST.i.dma` / `LIST.i.len` from here on.
            let prefix = format!("{}.", a.list);
            self.states.retain(|k, _| !k.starts_with(&prefix));
            let count = usize::try_from(ret).unwrap_or(0).min(segs.len());
            for (i, e) in segs.iter().take(count).enumerate() {
                self.states.insert(
                    format!("{prefix}{i}"),
                    IovaState {
                        addr: e.dma_address,
                        size: e.dma_len,
                    },
                );
                out.sg.push((e.dma_address, e.dma_len));
            }
            t.ret = Some(Ret::Sg(out));
            self.sg_lists.insert(a.list.clone(), segs);
        } else if let Some(a) = &step.dma_unmap_sg {
            let (dir, attrs) = (dir_of(&a.dir), attrs_of(&a.attrs));
            t.args.insert("list".into(), a.list.clone());
            t.args.insert("dir".into(), dir.name().to_string());
            if attrs.0 != 0 {
                t.args.insert("attrs".into(), hex(attrs.0));
            }
            let mut segs = self
                .sg_lists
                .get(&a.list)
                .cloned()
                .ok_or_else(|| format!("no list `{}` mapped by dma_map_sg yet", a.list))?;
            self.call_api(|api, m| api.unmap_sg(m, &mut segs, dir, attrs))?;
            self.sg_lists.insert(a.list.clone(), segs);
        } else if step.dma_need_unmap.is_some() {
            let b = self.call_api(|api, m| api.need_unmap(m))?;
            t.ret = Some(Ret::Bool(b));
        } else if let Some(a) = &step.time_advance {
            self.now_ns = self.now_ns.saturating_add(a.ms.saturating_mul(1_000_000));
            let now = arg(t, "now_ns", self.now_ns);
            self.machine.set_time(now);
            self.call_api(|api, m| api.advance_time(m, now))?;
        } else if let Some(a) = &step.state_set {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let size = arg(t, "size", self.eval(&a.size)?);
            t.args.insert("state".into(), a.state.clone());
            let st = IovaState { addr, size };
            self.states.insert(a.state.clone(), st);
            t.state = Some(StateView::of(&st));
        } else if let Some(a) = &step.cpu_write {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let bytes = pattern_bytes(&a.data, None, &self.fills)?;
            t.args.insert("len".into(), hex(bytes.len() as u64));
            let hazards = self.machine.cpu_write(addr, &bytes);
            t.hazards = hazards
                .iter()
                .map(|h: &Hazard| h.name().to_string())
                .collect();
        } else if let Some(a) = &step.cpu_speculate {
            let addr = arg(t, "addr", self.eval(&a.addr)?);
            let len = arg(t, "len", self.eval(&a.len)?);
            if len > MAX_ACCESS {
                return Err(format!("{len:#x} bytes is more than one access may move"));
            }
            self.machine.cpu_speculate(addr, len);
        }
        Ok(())
    }

    fn note_dir_attrs(&self, t: &mut StepTrace, state: &str, dir: Dir, attrs: Attrs) {
        t.args.insert("state".into(), state.to_string());
        t.args.insert("dir".into(), dir.name().to_string());
        if attrs.0 != 0 {
            t.args.insert("attrs".into(), hex(attrs.0));
        }
    }

    fn record_access(&mut self, t: &mut StepTrace, acc: DeviceAccess) {
        t.data = acc.data.map(DataView::of);
        t.fault = acc.fault.map(|f| {
            serde_json::json!({
                "iova": hex(f.iova),
                "reason": fault_name(&f.reason),
            })
        });
        t.hazards = acc.hazards.iter().map(|h| h.name().to_string()).collect();
    }

    /// Records the reservation a successful `try_alloc` made (TRYALLOC-06): base and length
    /// follow from the state and the phys offset, not from the implementation's internals.
    fn reserve(&mut self, state: &str, st: &IovaState, phys: u64) {
        let g = self.granule.max(1);
        let off = phys & (g - 1);
        let size = st.size & !DMA_IOVA_USE_SWIOTLB;
        let base = st.addr.wrapping_sub(off);
        let len = size.saturating_add(off).saturating_add(g - 1) & !(g - 1);
        self.reservations.push(Reservation {
            state: state.to_string(),
            base: hex(base),
            len: hex(len),
            range: (base, len),
            freed: false,
        });
    }

    fn release(&mut self, state: &str) {
        if let Some(r) = self
            .reservations
            .iter_mut()
            .rev()
            .find(|r| r.state == state && !r.freed)
        {
            r.freed = true;
        }
    }
}

pub fn fault_name(r: &FaultReason) -> &'static str {
    match r {
        FaultReason::Unmapped => "unmapped",
        FaultReason::Permission => "permission",
    }
}

/// Which streaming entry point a map or unmap step calls (`dma_map_phys`,
/// `dma_map_page_attrs`, `dma_map_resource` and their unmaps).
#[derive(Clone, Copy)]
enum MapEntry {
    Phys,
    Page,
    Resource,
}
