//! The serving side of the wire: a `DmaApi` in this process answers the runner's calls, and every
//! `Platform` callback it makes crosses back to the runner (`spec/9-wire.md`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use dmaconf_platform::{
    Attrs, Dir, DmaApi, IovaState, Platform, PlatformFacts, Prot, Region, SgEntry, WarnCode,
};

use crate::message::{code, need, read_line, Message, Ret, WireSeg, PROTOCOL};

/// What a server serves: the implementation's name, version and capabilities for the hello, and
/// a way to make one instance per device.
pub struct Served<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub capabilities: &'a [String],
    pub make: &'a dyn Fn() -> Box<dyn DmaApi>,
}

/// Serves the wire on `reader`/`writer` until the runner sends `shutdown` or closes the stream.
/// Returns an error when the runner broke the protocol in the middle of a call (the call cannot
/// be finished) or the streams failed.
pub fn serve(reader: impl BufRead, writer: impl Write, served: &Served) -> io::Result<()> {
    let io = RefCell::new(Io {
        reader,
        writer,
        next_id: 0,
    });
    let mut devices: BTreeMap<u64, Device> = BTreeMap::new();
    let mut next_dev = 0u64;
    loop {
        let read = io.borrow_mut().read();
        let line = match read {
            Ok(Some(line)) => line,
            Ok(None) => return Ok(()),
            // Not UTF-8, or too long: answered like any other unusable line.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                let m = Message::failure(None, code::MALFORMED, e.to_string());
                io.borrow_mut().answer(&m)?;
                continue;
            }
            Err(e) => return Err(e),
        };
        let m = match Message::parse(&line) {
            Ok(m) => m,
            Err(e) => {
                io.borrow_mut()
                    .answer(&Message::failure(None, code::MALFORMED, e))?;
                continue;
            }
        };
        let Some(call) = m.call.clone() else {
            let e = "a request needs the field `call`";
            io.borrow_mut()
                .answer(&Message::failure(m.id, code::MALFORMED, e))?;
            continue;
        };
        let reply = match call.as_str() {
            "hello" => hello(&m, served),
            "create" => match create(&m, served) {
                Ok(device) => {
                    next_dev += 1;
                    devices.insert(next_dev, device);
                    Message {
                        dev: Some(next_dev),
                        ..Message::reply(m.id)
                    }
                }
                Err(e) => Message::failure(m.id, code::BAD_REQUEST, e),
            },
            "destroy" => match m.dev.and_then(|d| devices.remove(&d)) {
                Some(device) => {
                    drop(device);
                    Message::reply(m.id)
                }
                None => Message::failure(m.id, code::BAD_REQUEST, unknown_device(&m)),
            },
            "shutdown" => {
                io.borrow_mut().answer(&Message::reply(m.id))?;
                return Ok(());
            }
            _ => match m.dev.and_then(|d| devices.get_mut(&d)) {
                None if !is_api_call(&call) => Message::failure(
                    m.id,
                    code::UNKNOWN_METHOD,
                    format!("no call `{call}` in wire protocol {PROTOCOL}"),
                ),
                None => Message::failure(m.id, code::BAD_REQUEST, unknown_device(&m)),
                Some(device) => {
                    let mut platform = ChildPlatform {
                        io: &io,
                        facts: device.facts,
                        reserved: &device.reserved,
                        cpu: m.cpu.unwrap_or(0),
                        now_ns: m.now_ns.unwrap_or(0),
                    };
                    let api = device.api.as_mut();
                    match catch_unwind(AssertUnwindSafe(|| dispatch(api, &mut platform, &m, &call)))
                    {
                        Ok(Ok(reply)) => reply,
                        Ok(Err(e)) => Message::failure(m.id, code::BAD_REQUEST, e),
                        Err(payload) => match payload.downcast::<SessionEnded>() {
                            Ok(ended) => return Err(io::Error::other(ended.0)),
                            Err(p) => Message::failure(m.id, code::PANIC, panic_text(&p)),
                        },
                    }
                }
            },
        };
        io.borrow_mut().answer(&Message { id: m.id, ..reply })?;
    }
}

/// One device: an instance of the implementation and the facts it was created with.
struct Device {
    api: Box<dyn DmaApi>,
    facts: PlatformFacts,
    reserved: Vec<Region>,
}

fn unknown_device(m: &Message) -> String {
    match m.dev {
        Some(d) => format!("no device {d} (create it first)"),
        None => format!(
            "`{}` needs the field `dev`",
            m.call.as_deref().unwrap_or("?")
        ),
    }
}

fn hello(m: &Message, served: &Served) -> Message {
    match m.protocol {
        Some(PROTOCOL) => Message {
            protocol: Some(PROTOCOL),
            name: Some(served.name.to_string()),
            version: Some(served.version.to_string()),
            capabilities: Some(served.capabilities.to_vec()),
            ..Message::reply(m.id)
        },
        Some(p) => Message::failure(
            m.id,
            code::VERSION,
            format!("this server speaks wire protocol {PROTOCOL}, not {p}"),
        ),
        None => Message::failure(m.id, code::BAD_REQUEST, "`hello` needs `protocol`"),
    }
}

fn create(m: &Message, served: &Served) -> Result<Device, String> {
    let facts = PlatformFacts::try_from(need(&m.facts, "facts", "create")?)?;
    let reserved = m
        .reserved
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(Region::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Device {
        api: (served.make)(),
        facts,
        reserved,
    })
}

/// Every DMA API call of the protocol (`spec/9-wire.md`, "Calls").
const API_CALLS: &[&str] = &[
    "probe",
    "iova_try_alloc",
    "iova_link",
    "iova_sync",
    "iova_unlink",
    "iova_destroy",
    "iova_free",
    "use_iova",
    "iova_size",
    "map_phys",
    "unmap_phys",
    "map_page_attrs",
    "unmap_page_attrs",
    "map_resource",
    "unmap_resource",
    "sync_single_for_cpu",
    "sync_single_for_device",
    "map_sg",
    "unmap_sg",
    "need_unmap",
    "need_sync",
    "advance_time",
];

fn is_api_call(call: &str) -> bool {
    API_CALLS.contains(&call)
}

/// Runs one DMA API call on `api`; the reply carries `ret` and the state or list it changed.
fn dispatch(
    api: &mut dyn DmaApi,
    p: &mut dyn Platform,
    m: &Message,
    call: &str,
) -> Result<Message, String> {
    let u = |v: &Option<u64>, f: &str| need(v, f, call);
    let dir = || need(&m.dir, "dir", call).map(Dir);
    let attrs = || need(&m.attrs, "attrs", call).map(Attrs);
    let state = || need(&m.state, "state", call).map(IovaState::from);
    let segs = || -> Result<Vec<SgEntry>, String> {
        Ok(need(&m.segs, "segs", call)?
            .into_iter()
            .map(SgEntry::from)
            .collect())
    };
    let mut reply = Message::reply(m.id);
    let ret = match call {
        "probe" => Ret::Int(api.probe(p).into()),
        "iova_try_alloc" => {
            let mut st = state()?;
            let ok = api.iova_try_alloc(p, &mut st, u(&m.phys, "phys")?, u(&m.size, "size")?);
            reply.state = Some(st.into());
            Ret::Bool(ok)
        }
        "iova_link" => {
            let mut st = state()?;
            let (phys, offset, size) = (
                u(&m.phys, "phys")?,
                u(&m.offset, "offset")?,
                u(&m.size, "size")?,
            );
            let r = api.iova_link(p, &mut st, phys, offset, size, dir()?, attrs()?);
            reply.state = Some(st.into());
            Ret::Int(r.into())
        }
        "iova_sync" => {
            let r = api.iova_sync(p, &state()?, u(&m.offset, "offset")?, u(&m.size, "size")?);
            Ret::Int(r.into())
        }
        "iova_unlink" => {
            let (offset, size) = (u(&m.offset, "offset")?, u(&m.size, "size")?);
            api.iova_unlink(p, &state()?, offset, size, dir()?, attrs()?);
            return Ok(reply);
        }
        "iova_destroy" => {
            let len = u(&m.mapped_len, "mapped_len")?;
            api.iova_destroy(p, &state()?, len, dir()?, attrs()?);
            return Ok(reply);
        }
        "iova_free" => {
            api.iova_free(p, &state()?);
            return Ok(reply);
        }
        "use_iova" => Ret::Bool(api.use_iova(&state()?)),
        "iova_size" => Ret::Uint(api.iova_size(&state()?)),
        "map_phys" | "map_page_attrs" | "map_resource" => {
            let (phys, size, dir, attrs) =
                (u(&m.phys, "phys")?, u(&m.size, "size")?, dir()?, attrs()?);
            Ret::Uint(match call {
                "map_phys" => api.map_phys(p, phys, size, dir, attrs),
                "map_page_attrs" => api.map_page_attrs(p, phys, size, dir, attrs),
                _ => api.map_resource(p, phys, size, dir, attrs),
            })
        }
        "unmap_phys" | "unmap_page_attrs" | "unmap_resource" => {
            let (addr, size, dir, attrs) =
                (u(&m.addr, "addr")?, u(&m.size, "size")?, dir()?, attrs()?);
            match call {
                "unmap_phys" => api.unmap_phys(p, addr, size, dir, attrs),
                "unmap_page_attrs" => api.unmap_page_attrs(p, addr, size, dir, attrs),
                _ => api.unmap_resource(p, addr, size, dir, attrs),
            }
            return Ok(reply);
        }
        "sync_single_for_cpu" | "sync_single_for_device" => {
            let (addr, size, dir) = (u(&m.addr, "addr")?, u(&m.size, "size")?, dir()?);
            if call == "sync_single_for_cpu" {
                api.sync_single_for_cpu(p, addr, size, dir);
            } else {
                api.sync_single_for_device(p, addr, size, dir);
            }
            return Ok(reply);
        }
        "map_sg" | "unmap_sg" => {
            let mut list = segs()?;
            let (dir, attrs) = (dir()?, attrs()?);
            let r = if call == "map_sg" {
                Some(api.map_sg(p, &mut list, dir, attrs))
            } else {
                api.unmap_sg(p, &mut list, dir, attrs);
                None
            };
            reply.segs = Some(list.into_iter().map(WireSeg::from).collect());
            reply.ret = r.map(|r| Ret::Int(r.into()));
            return Ok(reply);
        }
        "need_unmap" => Ret::Bool(api.need_unmap(p)),
        "need_sync" => Ret::Bool(api.need_sync(p, u(&m.addr, "addr")?)),
        "advance_time" => {
            api.advance_time(p, u(&m.now_ns, "now_ns")?);
            return Ok(reply);
        }
        other => return Err(format!("no call `{other}`")),
    };
    reply.ret = Some(ret);
    Ok(reply)
}

/// The session cannot go on (the runner closed the pipe or broke the protocol while a call
/// waited for a platform answer): unwinds out of the implementation's call to [`serve`].
struct SessionEnded(String);

fn end(why: String) -> ! {
    resume_unwind(Box::new(SessionEnded(why)))
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        // A door fault raised by the served implementation (a C plug-in's ABI violation).
        .or_else(|| {
            p.downcast_ref::<dmaconf_engine::fault::DoorFault>()
                .map(|f| f.detail.clone())
        })
        .unwrap_or_else(|| "non-string panic payload".into())
}

struct Io<R, W> {
    reader: R,
    writer: W,
    next_id: u64,
}

impl<R: BufRead, W: Write> Io<R, W> {
    fn read(&mut self) -> io::Result<Option<String>> {
        read_line(&mut self.reader)
    }
    /// Queues a message; the next read flushes it (callbacks without an answer batch up).
    fn send(&mut self, m: &Message) -> io::Result<()> {
        self.writer.write_all(m.line().as_bytes())
    }
    fn answer(&mut self, m: &Message) -> io::Result<()> {
        self.send(m)?;
        self.writer.flush()
    }
}

/// The platform as the implementation sees it in the child: facts, reserved regions, the CPU
/// and the time come with the call; every other callback goes to the runner's machine.
struct ChildPlatform<'a, R, W> {
    io: &'a RefCell<Io<R, W>>,
    facts: PlatformFacts,
    reserved: &'a [Region],
    cpu: u32,
    now_ns: u64,
}

impl<R: BufRead, W: Write> ChildPlatform<'_, R, W> {
    /// A callback without a result: sent, not answered (`spec/9-wire.md`, "Callbacks").
    fn notify(&self, m: Message) {
        if let Err(e) = self.io.borrow_mut().send(&m) {
            end(format!("writing `{}`: {e}", m.call.unwrap_or_default()));
        }
    }

    /// A callback with a result: waits for the runner's answer.
    fn ask(&self, mut m: Message) -> Message {
        let call = m.call.clone().unwrap_or_default();
        let mut io = self.io.borrow_mut();
        io.next_id += 1;
        let id = io.next_id;
        m.id = Some(id);
        if let Err(e) = io.answer(&m) {
            end(format!("writing `{call}`: {e}"));
        }
        let line = match io.read() {
            Ok(Some(line)) => line,
            Ok(None) => end(format!("the runner closed the pipe while `{call}` waited")),
            Err(e) => end(format!("reading the answer to `{call}`: {e}")),
        };
        match Message::parse(&line) {
            Ok(r) if r.id == Some(id) && r.error.is_none() => r,
            Ok(r) => end(format!(
                "the runner answered `{call}` (id {id}) with {}",
                r.line().trim_end()
            )),
            Err(e) => end(format!("the runner's answer to `{call}` is {e}")),
        }
    }

    fn ask_ret(&self, m: Message) -> Ret {
        let call = m.call.clone().unwrap_or_default();
        match self.ask(m).ret {
            Some(r) => r,
            None => end(format!("the runner's answer to `{call}` has no `ret`")),
        }
    }
}

fn want<T>(v: Option<T>, call: &str) -> T {
    v.unwrap_or_else(|| {
        end(format!(
            "the runner's `ret` for `{call}` has the wrong type"
        ))
    })
}

impl<R: BufRead, W: Write> Platform for ChildPlatform<'_, R, W> {
    fn facts(&self) -> PlatformFacts {
        self.facts
    }
    fn reserved_region(&self, index: u32) -> Option<Region> {
        self.reserved.get(index as usize).copied()
    }
    fn current_cpu(&self) -> u32 {
        self.cpu
    }
    fn now_ns(&self) -> u64 {
        self.now_ns
    }
    fn iommu_map(&mut self, iova: u64, phys: u64, len: u64, prot: Prot) -> i32 {
        let m = Message {
            iova: Some(iova),
            phys: Some(phys),
            len: Some(len),
            prot: Some(prot.0),
            ..Message::request("iommu_map")
        };
        want(self.ask_ret(m).as_i32(), "iommu_map")
    }
    fn iotlb_sync_map(&mut self, iova: u64, len: u64) -> i32 {
        let m = Message {
            iova: Some(iova),
            len: Some(len),
            ..Message::request("iotlb_sync_map")
        };
        want(self.ask_ret(m).as_i32(), "iotlb_sync_map")
    }
    fn iommu_unmap(&mut self, iova: u64, len: u64) -> u64 {
        let m = Message {
            iova: Some(iova),
            len: Some(len),
            ..Message::request("iommu_unmap")
        };
        want(self.ask_ret(m).as_u64(), "iommu_unmap")
    }
    fn iotlb_sync(&mut self, iova: u64, len: u64) {
        self.notify(Message {
            iova: Some(iova),
            len: Some(len),
            ..Message::request("iotlb_sync")
        })
    }
    fn flush_iotlb_all(&mut self) {
        self.notify(Message::request("flush_iotlb_all"))
    }
    fn iova_to_phys(&self, iova: u64) -> u64 {
        let m = Message {
            iova: Some(iova),
            ..Message::request("iova_to_phys")
        };
        want(self.ask_ret(m).as_u64(), "iova_to_phys")
    }
    fn sync_for_device(&mut self, phys: u64, len: u64, dir: Dir) {
        self.notify(Message {
            phys: Some(phys),
            len: Some(len),
            dir: Some(dir.0),
            ..Message::request("sync_for_device")
        })
    }
    fn sync_for_cpu(&mut self, phys: u64, len: u64, dir: Dir) {
        self.notify(Message {
            phys: Some(phys),
            len: Some(len),
            dir: Some(dir.0),
            ..Message::request("sync_for_cpu")
        })
    }
    fn sync_barrier(&mut self) {
        self.notify(Message::request("sync_barrier"))
    }
    fn bounce_alloc(
        &mut self,
        orig: u64,
        len: u64,
        alloc_align_mask: u64,
        min_align_mask: u64,
        slot: &mut u64,
    ) -> i32 {
        let r = self.ask(Message {
            orig: Some(orig),
            len: Some(len),
            alloc_align_mask: Some(alloc_align_mask),
            min_align_mask: Some(min_align_mask),
            ..Message::request("bounce_alloc")
        });
        let ret = want(r.ret.and_then(Ret::as_i32), "bounce_alloc");
        if ret == 0 {
            *slot = want(r.slot, "bounce_alloc");
        }
        ret
    }
    fn bounce_free(&mut self, slot: u64, len: u64) {
        self.notify(Message {
            slot: Some(slot),
            len: Some(len),
            ..Message::request("bounce_free")
        })
    }
    fn is_bounce(&self, phys: u64) -> bool {
        let m = Message {
            phys: Some(phys),
            ..Message::request("is_bounce")
        };
        want(self.ask_ret(m).as_bool(), "is_bounce")
    }
    fn bounce_orig(&self, phys: u64) -> u64 {
        let m = Message {
            phys: Some(phys),
            ..Message::request("bounce_orig")
        };
        want(self.ask_ret(m).as_u64(), "bounce_orig")
    }
    fn copy(&mut self, dst: u64, src: u64, len: u64) {
        self.notify(Message {
            dst: Some(dst),
            src: Some(src),
            len: Some(len),
            ..Message::request("copy")
        })
    }
    fn fill(&mut self, dst: u64, byte: u8, len: u64) {
        self.notify(Message {
            dst: Some(dst),
            byte: Some(byte),
            len: Some(len),
            ..Message::request("fill")
        })
    }
    fn p2p_type(&self, phys: u64) -> u32 {
        let m = Message {
            phys: Some(phys),
            ..Message::request("p2p_type")
        };
        want(self.ask_ret(m).as_u32(), "p2p_type")
    }
    fn p2p_bus_offset(&self, phys: u64) -> u64 {
        let m = Message {
            phys: Some(phys),
            ..Message::request("p2p_bus_offset")
        };
        want(self.ask_ret(m).as_u64(), "p2p_bus_offset")
    }
    fn warn(&mut self, code: WarnCode) {
        self.notify(Message {
            code: Some(code.0),
            ..Message::request("warn")
        })
    }
}
