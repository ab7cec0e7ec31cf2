//! The runner's side of the wire: a `DmaApi` proxy per device that drives an implementation in
//! a child process while the machine stays here. One child serves a whole run; a child that
//! dies, hangs or breaks the protocol is replaced by a fresh one for the next vector, and the
//! vector it was serving ends with a [`DoorFault`] of the right class.

use std::io::{BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dmaconf_engine::exec::{Execution, Stop};
use dmaconf_engine::model::Vector;
use dmaconf_engine::preset::Presets;
use dmaconf_engine::{Door, DoorFault, FaultKind, Implementation};
use dmaconf_platform::{Attrs, Dir, DmaApi, IovaState, Platform, Prot, SgEntry, WarnCode};

use crate::message::{code, need, read_line, Facts, Message, Ret, WireRegion, WireSeg, PROTOCOL};

/// What the child said about itself in the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub name: String,
    pub version: String,
    pub capabilities: Vec<String>,
}

/// Counters of one wire (for benchmarks and reports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireStats {
    /// Messages the runner wrote and read.
    pub sent: u64,
    pub received: u64,
    /// Bytes the runner wrote and read.
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Children started (1 + the number of replacements).
    pub children: u64,
}

/// A wire to a child command: the shared end of every [`WireDevice`] of one run.
pub struct Wire {
    link: Mutex<Link>,
    hello: Hello,
    watchdog: Arc<Watchdog>,
    watcher: Option<JoinHandle<()>>,
}

impl Wire {
    /// Starts `command` (program and arguments) and shakes hands. `timeout` bounds each
    /// device's life (a vector on one preset) and the handshake.
    pub fn start(command: &[String], timeout: Duration) -> Result<Arc<Wire>, String> {
        if command.is_empty() {
            return Err("the wire needs a command to start".into());
        }
        let watchdog = Arc::new(Watchdog::default());
        let watcher = {
            let w = Arc::clone(&watchdog);
            std::thread::Builder::new()
                .name("dmaconf-wire-watchdog".into())
                .spawn(move || w.run())
                .map_err(|e| format!("cannot start the wire's watchdog: {e}"))?
        };
        let mut link = Link {
            command: command.to_vec(),
            timeout,
            live: None,
            generation: 0,
            stats: WireStats::default(),
            watchdog: Arc::clone(&watchdog),
        };
        let hello = link.spawn().map_err(|f| f.detail)?;
        Ok(Arc::new(Wire {
            link: Mutex::new(link),
            hello,
            watchdog,
            watcher: Some(watcher),
        }))
    }

    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    pub fn stats(&self) -> WireStats {
        self.lock().stats
    }

    /// The wire as an engine implementation: one [`WireDevice`] per vector run.
    pub fn implementation(self: &Arc<Wire>) -> Implementation {
        let caps: Vec<&str> = self.hello.capabilities.iter().map(String::as_str).collect();
        let wire = Arc::clone(self);
        Implementation::new(self.hello.name.clone(), &caps, move || {
            Box::new(WireDevice {
                wire: Arc::clone(&wire),
                dev: None,
            })
        })
    }

    fn lock(&self) -> MutexGuard<'_, Link> {
        // A panic of the machine inside a callback poisons nothing the link relies on.
        self.link.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        self.lock().shut_down();
        self.watchdog.stop();
        if let Some(w) = self.watcher.take() {
            let _ = w.join();
        }
    }
}

/// The running child.
struct Live {
    process: Arc<Mutex<Child>>,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    generation: u64,
    next_id: u64,
}

struct Link {
    command: Vec<String>,
    timeout: Duration,
    live: Option<Live>,
    /// Counts children; a device remembers the generation that created it.
    generation: u64,
    stats: WireStats,
    watchdog: Arc<Watchdog>,
}

impl Link {
    fn command_line(&self) -> String {
        self.command.join(" ")
    }

    /// Starts a fresh child and shakes hands with it (`spec/9-wire.md`, "Handshake").
    fn spawn(&mut self) -> Result<Hello, DoorFault> {
        let mut command = Command::new(&self.command[0]);
        // Its own process group, so that ending the child also ends what it started (a shell
        // or launcher script whose grandchild holds the pipe).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| harness(format!("cannot start `{}`: {e}", self.command_line())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(harness("the child has no stdin/stdout pipes"));
        };
        self.generation += 1;
        self.stats.children += 1;
        let process = Arc::new(Mutex::new(child));
        self.watchdog
            .arm(Arc::clone(&process), Instant::now() + self.timeout);
        self.live = Some(Live {
            process,
            stdin: BufWriter::new(stdin),
            stdout: BufReader::new(stdout),
            generation: self.generation,
            next_id: 0,
        });
        let hello = Message {
            protocol: Some(PROTOCOL),
            runner: Some(format!("dmaconf {}", env!("CARGO_PKG_VERSION"))),
            ..Message::request("hello")
        };
        let reply = self.exchange(hello, None, "hello");
        self.watchdog.disarm();
        let reply = reply.map_err(|f| {
            DoorFault::new(
                f.kind,
                format!("starting `{}`: {}", self.command_line(), f.detail),
            )
        })?;
        match reply.protocol {
            Some(PROTOCOL) => {}
            other => {
                let said = other.map_or("no protocol".to_string(), |p| format!("protocol {p}"));
                return Err(self.violation(format!(
                    "`{}` answered the hello with {said}; this runner speaks wire protocol {PROTOCOL}",
                    self.command_line()
                )));
            }
        }
        Ok(Hello {
            name: reply.name.unwrap_or_else(|| self.command_line()),
            version: reply.version.unwrap_or_default(),
            capabilities: reply.capabilities.unwrap_or_default(),
        })
    }

    /// Creates a device in the child (starting a child first if there is none) and arms the
    /// device's deadline. Returns the child's device number and the child's generation.
    fn create(&mut self, p: &dyn Platform) -> Result<(u64, u64), DoorFault> {
        if self.live.is_none() {
            self.spawn()?;
        }
        let generation = self.generation;
        if let Some(live) = &self.live {
            self.watchdog
                .arm(Arc::clone(&live.process), Instant::now() + self.timeout);
        }
        let reserved: Vec<WireRegion> = (0..)
            .map_while(|i| p.reserved_region(i))
            .map(WireRegion::from)
            .collect();
        let m = Message {
            facts: Some(Facts::from(p.facts())),
            reserved: Some(reserved),
            ..Message::request("create")
        };
        let reply = self.exchange(m, None, "create")?;
        match reply.dev {
            Some(dev) => Ok((dev, generation)),
            None => Err(self.violation("the answer to `create` has no `dev`".into())),
        }
    }

    /// Sends one request and serves the platform callbacks it makes until its answer comes.
    fn exchange(
        &mut self,
        mut m: Message,
        mut platform: Option<&mut dyn Platform>,
        call: &str,
    ) -> Result<Message, DoorFault> {
        let Some(live) = self.live.as_mut() else {
            return Err(harness("no child is running"));
        };
        live.next_id += 1;
        let id = live.next_id;
        m.id = Some(id);
        if let Err(e) = self.send(&m) {
            return Err(self.gone(call, &e.to_string()));
        }
        loop {
            let line = match self.live.as_mut().map(|l| read_line(&mut l.stdout)) {
                Some(Ok(Some(line))) => line,
                Some(Ok(None)) | None => return Err(self.gone(call, "")),
                Some(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(self.violation(format!("while `{call}` ran, the child sent {e}")))
                }
                Some(Err(e)) => return Err(self.gone(call, &e.to_string())),
            };
            self.stats.received += 1;
            self.stats.bytes_received += line.len() as u64;
            let r = match Message::parse(&line) {
                Ok(r) => r,
                Err(e) => {
                    return Err(self.violation(format!(
                        "while `{call}` ran, the child sent a line that is {e}: {}",
                        excerpt(&line)
                    )))
                }
            };
            if let Some(callback) = r.call.as_deref() {
                let Some(p) = platform.as_deref_mut() else {
                    return Err(self.violation(format!(
                        "the child called the platform (`{callback}`) during `{call}`, which has no platform"
                    )));
                };
                match perform(p, &r, callback) {
                    Ok(None) => {}
                    Ok(Some(answer)) => {
                        if let Err(e) = self.send(&Message { id: r.id, ..answer }) {
                            return Err(self.gone(call, &e.to_string()));
                        }
                    }
                    Err((code, e)) => {
                        // Tell the child why (when it waits for an answer), then end it: its
                        // call cannot go on.
                        if r.id.is_some() {
                            let _ = self.send(&Message::failure(r.id, code, e.clone()));
                        }
                        return Err(self.violation(format!("during `{call}`: {e}")));
                    }
                }
                continue;
            }
            if r.id != Some(id) {
                return Err(self.violation(format!(
                    "the child answered `{call}` (id {id}) with id {}: {}",
                    r.id.map_or("none".into(), |i| i.to_string()),
                    excerpt(&line)
                )));
            }
            if let Some(err) = r.error {
                let kind = match err.code.as_str() {
                    code::PANIC => FaultKind::Crash,
                    code::NOT_SUPPORTED => FaultKind::NotSupported,
                    _ => FaultKind::Harness,
                };
                let detail = if err.code == code::UNAVAILABLE {
                    err.message
                } else {
                    format!(
                        "the implementation answered `{call}` with {}: {}",
                        err.code, err.message
                    )
                };
                return Err(DoorFault::new(kind, detail));
            }
            return Ok(r);
        }
    }

    fn send(&mut self, m: &Message) -> std::io::Result<()> {
        let line = m.line();
        let live = self
            .live
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no child"))?;
        live.stdin.write_all(line.as_bytes())?;
        live.stdin.flush()?;
        self.stats.sent += 1;
        self.stats.bytes_sent += line.len() as u64;
        Ok(())
    }

    /// The child's end of the pipe closed: it died or was killed. Reaps it and says how.
    fn gone(&mut self, call: &str, io_error: &str) -> DoorFault {
        let fired = self.watchdog.disarm();
        let status = self.reap(false);
        if fired {
            return DoorFault::new(
                FaultKind::Timeout,
                format!(
                    "no answer to `{call}` within {:?} (the limit per vector); the child was killed",
                    self.timeout
                ),
            );
        }
        let how = match status {
            Some(s) => describe(s),
            None => "could not be waited for".into(),
        };
        let io = if io_error.is_empty() {
            String::new()
        } else {
            format!(" ({io_error})")
        };
        DoorFault::new(
            FaultKind::Crash,
            format!("the child {how} during `{call}`{io}"),
        )
    }

    /// The child broke the protocol: it is ended, and a fresh one serves the next vector.
    fn violation(&mut self, what: String) -> DoorFault {
        self.watchdog.disarm();
        self.reap(true);
        harness(format!("wire protocol violation: {what}"))
    }

    /// Ends the current child (killing it first when `kill`) and waits for it.
    fn reap(&mut self, kill: bool) -> Option<ExitStatus> {
        let live = self.live.take()?;
        drop(live.stdin);
        let mut child = live.process.lock().unwrap_or_else(PoisonError::into_inner);
        if kill {
            kill_group(&mut child);
        }
        child.wait().ok()
    }

    /// The end of the run: asks the child to stop, then ends it if it does not.
    fn shut_down(&mut self) {
        let Some(live) = self.live.as_mut() else {
            return;
        };
        live.next_id += 1;
        let id = live.next_id;
        self.watchdog.disarm();
        // The answer is not awaited: the child's exit is what counts.
        let _ = self.send(&Message {
            id: Some(id),
            ..Message::request("shutdown")
        });
        let Some(live) = self.live.take() else { return };
        drop(live.stdin);
        let mut child = live.process.lock().unwrap_or_else(PoisonError::into_inner);
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        kill_group(&mut child);
        let _ = child.wait();
    }
}

/// Kills the child and every process of its group (it leads one: see [`Link::spawn`]). Called
/// only before the child is reaped, so its id still names it.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative id signals the process group the child leads; it
        // touches no memory. The child is not reaped yet, so the id cannot have been reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

fn harness(detail: impl Into<String>) -> DoorFault {
    DoorFault::new(FaultKind::Harness, detail)
}

fn excerpt(line: &str) -> String {
    let line = line.trim_end();
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("`{}`...", &line[..i]),
        None => format!("`{line}`"),
    }
}

/// "was killed by SIGSEGV", "exited with status 3".
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return format!("was killed by {}", signal_name(sig));
        }
    }
    match status.code() {
        Some(c) => format!("exited with status {c}"),
        None => format!("ended ({status})"),
    }
}

/// The usual name of a signal that ends a process.
pub fn signal_name(sig: i32) -> String {
    const NAMES: &[(i32, &str)] = &[
        (libc::SIGHUP, "SIGHUP"),
        (libc::SIGINT, "SIGINT"),
        (libc::SIGQUIT, "SIGQUIT"),
        (libc::SIGILL, "SIGILL"),
        (libc::SIGTRAP, "SIGTRAP"),
        (libc::SIGABRT, "SIGABRT"),
        (libc::SIGBUS, "SIGBUS"),
        (libc::SIGFPE, "SIGFPE"),
        (libc::SIGKILL, "SIGKILL"),
        (libc::SIGUSR1, "SIGUSR1"),
        (libc::SIGSEGV, "SIGSEGV"),
        (libc::SIGUSR2, "SIGUSR2"),
        (libc::SIGPIPE, "SIGPIPE"),
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGTERM, "SIGTERM"),
        (libc::SIGSYS, "SIGSYS"),
        (libc::SIGXCPU, "SIGXCPU"),
    ];
    NAMES
        .iter()
        .find(|(n, _)| *n == sig)
        .map_or_else(|| format!("signal {sig}"), |(_, name)| name.to_string())
}

/// Performs one platform callback on the machine. `Ok(Some(answer))` for a callback with a
/// result, `Ok(None)` for one without (no answer is sent), `Err` for a bad request.
fn perform(
    p: &mut dyn Platform,
    m: &Message,
    call: &str,
) -> Result<Option<Message>, (&'static str, String)> {
    let bad = |e: String| (code::BAD_REQUEST, e);
    let u = |v: &Option<u64>, f: &str| need(v, f, call).map_err(bad);
    let dir = || need(&m.dir, "dir", call).map(Dir).map_err(bad);
    let mut answer = Message::default();
    let ret = match call {
        "iommu_map" => {
            let prot = Prot(need(&m.prot, "prot", call).map_err(bad)?);
            let (iova, phys, len) = (u(&m.iova, "iova")?, u(&m.phys, "phys")?, u(&m.len, "len")?);
            Ret::Int(p.iommu_map(iova, phys, len, prot).into())
        }
        "iotlb_sync_map" => Ret::Int(
            p.iotlb_sync_map(u(&m.iova, "iova")?, u(&m.len, "len")?)
                .into(),
        ),
        "iommu_unmap" => Ret::Uint(p.iommu_unmap(u(&m.iova, "iova")?, u(&m.len, "len")?)),
        "iova_to_phys" => Ret::Uint(p.iova_to_phys(u(&m.iova, "iova")?)),
        "bounce_alloc" => {
            let (orig, len) = (u(&m.orig, "orig")?, u(&m.len, "len")?);
            let (aam, mam) = (
                u(&m.alloc_align_mask, "alloc_align_mask")?,
                u(&m.min_align_mask, "min_align_mask")?,
            );
            let mut slot = 0;
            let r = p.bounce_alloc(orig, len, aam, mam, &mut slot);
            if r == 0 {
                answer.slot = Some(slot);
            }
            Ret::Int(r.into())
        }
        "is_bounce" => Ret::Bool(p.is_bounce(u(&m.phys, "phys")?)),
        "bounce_orig" => Ret::Uint(p.bounce_orig(u(&m.phys, "phys")?)),
        "p2p_type" => Ret::Uint(p.p2p_type(u(&m.phys, "phys")?).into()),
        "p2p_bus_offset" => Ret::Uint(p.p2p_bus_offset(u(&m.phys, "phys")?)),
        "iotlb_sync" => {
            p.iotlb_sync(u(&m.iova, "iova")?, u(&m.len, "len")?);
            return Ok(None);
        }
        "flush_iotlb_all" => {
            p.flush_iotlb_all();
            return Ok(None);
        }
        "sync_for_device" | "sync_for_cpu" => {
            let (phys, len, dir) = (u(&m.phys, "phys")?, u(&m.len, "len")?, dir()?);
            if call == "sync_for_device" {
                p.sync_for_device(phys, len, dir);
            } else {
                p.sync_for_cpu(phys, len, dir);
            }
            return Ok(None);
        }
        "sync_barrier" => {
            p.sync_barrier();
            return Ok(None);
        }
        "bounce_free" => {
            p.bounce_free(u(&m.slot, "slot")?, u(&m.len, "len")?);
            return Ok(None);
        }
        "copy" => {
            p.copy(u(&m.dst, "dst")?, u(&m.src, "src")?, u(&m.len, "len")?);
            return Ok(None);
        }
        "fill" => {
            let byte = need(&m.byte, "byte", call).map_err(bad)?;
            p.fill(u(&m.dst, "dst")?, byte, u(&m.len, "len")?);
            return Ok(None);
        }
        "warn" => {
            p.warn(WarnCode(need(&m.code, "code", call).map_err(bad)?));
            return Ok(None);
        }
        other => {
            return Err((
                code::UNKNOWN_METHOD,
                format!("the child called the platform with an unknown call `{other}`"),
            ))
        }
    };
    answer.ret = Some(ret);
    Ok(Some(answer))
}

/// One device in the child, as a `DmaApi` the engine drives. Created at `probe`, destroyed when
/// the engine drops it.
pub struct WireDevice {
    wire: Arc<Wire>,
    /// The child's device number and the child generation that made it.
    dev: Option<(u64, u64)>,
}

impl WireDevice {
    /// One call: sends `m` for this device, serves its callbacks, decodes the answer. Any fault
    /// leaves the call through [`DoorFault::raise`].
    fn call<T>(
        &self,
        mut m: Message,
        platform: Option<&mut dyn Platform>,
        decode: impl FnOnce(&Message) -> Option<T>,
    ) -> T {
        let call = m.call.clone().unwrap_or_default();
        let result = {
            let mut link = self.wire.lock();
            match self.dev {
                Some((dev, generation))
                    if link.live.as_ref().map(|l| l.generation) == Some(generation) =>
                {
                    m.dev = Some(dev);
                    if let Some(p) = &platform {
                        m.cpu = Some(p.current_cpu());
                        m.now_ns = Some(p.now_ns());
                    }
                    link.exchange(m, platform, &call).and_then(|r| {
                        decode(&r).ok_or_else(|| {
                            link.violation(format!(
                                "the answer to `{call}` lacks a field or has the wrong type: {r:?}"
                            ))
                        })
                    })
                }
                _ => Err(harness(format!("`{call}` on a device whose child is gone"))),
            }
        };
        result.unwrap_or_else(|f| f.raise())
    }

    /// A call that lends the state and gets it back (`iova_try_alloc`, `iova_link`).
    fn state_call<T>(
        &self,
        p: &mut dyn Platform,
        m: Message,
        state: &mut IovaState,
        decode: impl FnOnce(Ret) -> Option<T>,
    ) -> T {
        let m = Message {
            state: Some((*state).into()),
            ..m
        };
        let (ret, st) = self.call(m, Some(p), |r| Some((decode(r.ret?)?, r.state?)));
        *state = st.into();
        ret
    }
}

impl Drop for WireDevice {
    fn drop(&mut self) {
        let Some((dev, generation)) = self.dev else {
            return;
        };
        let mut link = self.wire.lock();
        if link.live.as_ref().map(|l| l.generation) == Some(generation) {
            let m = Message {
                dev: Some(dev),
                ..Message::request("destroy")
            };
            if let Err(f) = link.exchange(m, None, "destroy") {
                // The vector's result is already recorded; a child that fails here is replaced.
                eprintln!("dmaconf wire: destroying device {dev}: {}", f.detail);
            }
        }
        link.watchdog.disarm();
    }
}

fn with_state(call: &str, state: &IovaState) -> Message {
    Message {
        state: Some((*state).into()),
        ..Message::request(call)
    }
}

fn dir_attrs(m: Message, dir: Dir, attrs: Attrs) -> Message {
    Message {
        dir: Some(dir.0),
        attrs: Some(attrs.0),
        ..m
    }
}

fn ret_i32(r: &Message) -> Option<i32> {
    r.ret?.as_i32()
}
fn ret_u64(r: &Message) -> Option<u64> {
    r.ret?.as_u64()
}
fn ret_bool(r: &Message) -> Option<bool> {
    r.ret?.as_bool()
}
fn no_ret(_: &Message) -> Option<()> {
    Some(())
}

impl DmaApi for WireDevice {
    fn probe(&mut self, p: &mut dyn Platform) -> i32 {
        let created = self.wire.lock().create(p);
        match created {
            Ok(dev) => self.dev = Some(dev),
            Err(f) => f.raise(),
        }
        self.call(Message::request("probe"), Some(p), ret_i32)
    }
    fn iova_try_alloc(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        size: u64,
    ) -> bool {
        let m = Message {
            phys: Some(phys),
            size: Some(size),
            ..Message::request("iova_try_alloc")
        };
        self.state_call(p, m, state, Ret::as_bool)
    }
    fn iova_link(
        &mut self,
        p: &mut dyn Platform,
        state: &mut IovaState,
        phys: u64,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        let m = Message {
            phys: Some(phys),
            offset: Some(offset),
            size: Some(size),
            ..dir_attrs(Message::request("iova_link"), dir, attrs)
        };
        self.state_call(p, m, state, Ret::as_i32)
    }
    fn iova_sync(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
    ) -> i32 {
        let m = Message {
            offset: Some(offset),
            size: Some(size),
            ..with_state("iova_sync", state)
        };
        self.call(m, Some(p), ret_i32)
    }
    fn iova_unlink(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        offset: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let m = Message {
            offset: Some(offset),
            size: Some(size),
            ..dir_attrs(with_state("iova_unlink", state), dir, attrs)
        };
        self.call(m, Some(p), no_ret)
    }
    fn iova_destroy(
        &mut self,
        p: &mut dyn Platform,
        state: &IovaState,
        mapped_len: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let m = Message {
            mapped_len: Some(mapped_len),
            ..dir_attrs(with_state("iova_destroy", state), dir, attrs)
        };
        self.call(m, Some(p), no_ret)
    }
    fn iova_free(&mut self, p: &mut dyn Platform, state: &IovaState) {
        self.call(with_state("iova_free", state), Some(p), no_ret)
    }
    fn map_phys(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        self.map("map_phys", p, phys, size, dir, attrs)
    }
    fn unmap_phys(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir, attrs: Attrs) {
        self.unmap("unmap_phys", p, addr, size, dir, attrs)
    }
    fn sync_single_for_cpu(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.sync_single("sync_single_for_cpu", p, addr, size, dir)
    }
    fn sync_single_for_device(&mut self, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        self.sync_single("sync_single_for_device", p, addr, size, dir)
    }
    fn map_sg(
        &mut self,
        p: &mut dyn Platform,
        segs: &mut [SgEntry],
        dir: Dir,
        attrs: Attrs,
    ) -> i32 {
        let (ret, out) = self.sg("map_sg", p, segs, dir, attrs, |r| {
            Some((ret_i32(r)?, r.segs.clone()?))
        });
        write_back(segs, &out);
        ret
    }
    fn unmap_sg(&mut self, p: &mut dyn Platform, segs: &mut [SgEntry], dir: Dir, attrs: Attrs) {
        let ((), out) = self.sg("unmap_sg", p, segs, dir, attrs, |r| {
            Some(((), r.segs.clone()?))
        });
        write_back(segs, &out);
    }
    fn need_unmap(&mut self, p: &mut dyn Platform) -> bool {
        self.call(Message::request("need_unmap"), Some(p), ret_bool)
    }
    fn need_sync(&mut self, p: &mut dyn Platform, addr: u64) -> bool {
        let m = Message {
            addr: Some(addr),
            ..Message::request("need_sync")
        };
        self.call(m, Some(p), ret_bool)
    }
    fn map_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        self.map("map_page_attrs", p, phys, size, dir, attrs)
    }
    fn unmap_page_attrs(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        self.unmap("unmap_page_attrs", p, addr, size, dir, attrs)
    }
    fn map_resource(
        &mut self,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        self.map("map_resource", p, phys, size, dir, attrs)
    }
    fn unmap_resource(
        &mut self,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        self.unmap("unmap_resource", p, addr, size, dir, attrs)
    }
    fn advance_time(&mut self, p: &mut dyn Platform, now_ns: u64) {
        // `now_ns` travels as the call's time (the engine has just set the machine to it).
        let _ = now_ns;
        self.call(Message::request("advance_time"), Some(p), no_ret)
    }
    fn use_iova(&self, state: &IovaState) -> bool {
        self.call(with_state("use_iova", state), None, ret_bool)
    }
    fn iova_size(&self, state: &IovaState) -> u64 {
        self.call(with_state("iova_size", state), None, ret_u64)
    }
}

impl WireDevice {
    fn map(
        &self,
        call: &str,
        p: &mut dyn Platform,
        phys: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) -> u64 {
        let m = Message {
            phys: Some(phys),
            size: Some(size),
            ..dir_attrs(Message::request(call), dir, attrs)
        };
        self.call(m, Some(p), ret_u64)
    }
    fn unmap(
        &self,
        call: &str,
        p: &mut dyn Platform,
        addr: u64,
        size: u64,
        dir: Dir,
        attrs: Attrs,
    ) {
        let m = Message {
            addr: Some(addr),
            size: Some(size),
            ..dir_attrs(Message::request(call), dir, attrs)
        };
        self.call(m, Some(p), no_ret)
    }
    fn sync_single(&self, call: &str, p: &mut dyn Platform, addr: u64, size: u64, dir: Dir) {
        let m = Message {
            addr: Some(addr),
            size: Some(size),
            dir: Some(dir.0),
            ..Message::request(call)
        };
        self.call(m, Some(p), no_ret)
    }
    fn sg<T>(
        &self,
        call: &str,
        p: &mut dyn Platform,
        segs: &[SgEntry],
        dir: Dir,
        attrs: Attrs,
        decode: impl FnOnce(&Message) -> Option<(T, Vec<WireSeg>)>,
    ) -> (T, Vec<WireSeg>) {
        let m = Message {
            segs: Some(segs.iter().copied().map(WireSeg::from).collect()),
            ..dir_attrs(Message::request(call), dir, attrs)
        };
        let n = segs.len();
        self.call(m, Some(p), |r| decode(r).filter(|(_, out)| out.len() == n))
    }
}

fn write_back(segs: &mut [SgEntry], out: &[WireSeg]) {
    for (s, o) in segs.iter_mut().zip(out) {
        *s = (*o).into();
    }
}

/// Kills the child of a device whose deadline passed (the timeout of `spec/9-wire.md`). The
/// runner's blocked read then ends, and [`Link::gone`] reports a timeout.
#[derive(Default)]
struct Watchdog {
    watch: Mutex<Watch>,
    wake: Condvar,
}

#[derive(Default)]
struct Watch {
    deadline: Option<(Instant, Arc<Mutex<Child>>)>,
    fired: bool,
    stop: bool,
}

impl Watchdog {
    fn lock(&self) -> MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn arm(&self, process: Arc<Mutex<Child>>, at: Instant) {
        let mut w = self.lock();
        w.deadline = Some((at, process));
        w.fired = false;
        self.wake.notify_one();
    }

    /// Clears the deadline; says whether it had fired.
    fn disarm(&self) -> bool {
        let mut w = self.lock();
        w.deadline = None;
        std::mem::take(&mut w.fired)
    }

    fn stop(&self) {
        self.lock().stop = true;
        self.wake.notify_one();
    }

    fn run(&self) {
        let mut w = self.lock();
        while !w.stop {
            match &w.deadline {
                None => {
                    w = self.wake.wait(w).unwrap_or_else(PoisonError::into_inner);
                }
                Some((at, process)) => {
                    let now = Instant::now();
                    if now >= *at {
                        // Killing closes the child's stdout; the runner's read returns.
                        kill_group(&mut process.lock().unwrap_or_else(PoisonError::into_inner));
                        w.deadline = None;
                        w.fired = true;
                    } else {
                        let wait = *at - now;
                        w = self
                            .wake
                            .wait_timeout(w, wait)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
        }
    }
}

/// The door of an implementation whose server cannot serve (it did not start, or its plug-in did
/// not load): every vector runs and reports `harness_error` with the reason, so a run against a
/// broken plug-in is red with a clear message rather than refused.
pub struct Unavailable {
    pub name: String,
    pub reason: String,
}

impl Door for Unavailable {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn unmet(&self, _vector: &Vector) -> Vec<String> {
        Vec::new()
    }
    fn execute(&self, vector: &Vector, _presets: &Presets) -> Execution {
        Execution::stopped(vector, Stop::Harness(self.reason.clone()))
    }
}
