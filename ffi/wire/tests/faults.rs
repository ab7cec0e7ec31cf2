//! A child that crashes, hangs or breaks the protocol ends only the vector it was serving, with
//! the right result class, and the run goes on with a fresh child (`spec/9-wire.md`,
//! "Faults"). The child is this test binary itself (`--wire-child MODE`): it serves the
//! reference and misbehaves at the third `iova_link` of a device, so which vectors are hit
//! follows from the vectors' own steps, counted here from the in-process run.

use std::io::{self, BufRead, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use dmaconf_engine::report::{run_suite, Filter, Report};
use dmaconf_engine::{load_suite, Implementation, Profile, ResultClass, Suite};
use dmaconf_wire::{serve, Served, Wire};
use libtest_mimic::{Arguments, Failed, Trial};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--wire-child") {
        child(args.get(2).map_or("", String::as_str));
        return;
    }
    let suite = Arc::new(load_suite(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors"),
    ));
    let mut trials = Vec::new();
    for (mode, expect) in [
        ("segv", Expect::Crash("was killed by SIGSEGV")),
        ("abort", Expect::Crash("was killed by SIGABRT")),
        ("exit", Expect::Crash("exited with status 3")),
        (
            "garbage",
            Expect::Harness("a line that is not a wire message"),
        ),
        ("wrong-id", Expect::Harness("with id 4242")),
        (
            "unknown-callback",
            Expect::Harness("unknown call `frobnicate`"),
        ),
    ] {
        let suite = Arc::clone(&suite);
        trials.push(Trial::test(format!("fault::{mode}"), move || {
            check(
                &suite,
                mode,
                false,
                expect,
                Duration::from_secs(30),
                &Filter::default(),
            )
        }));
    }
    // Each hang costs the whole limit: a few vectors that reach a third link, a few that do not.
    let suite_h = Arc::clone(&suite);
    trials.push(Trial::test("fault::hang", move || {
        let filter = Filter {
            ids: vec!["link-*".into(), "wl-blk-*".into()],
            ..Filter::default()
        };
        check(
            &suite_h,
            "hang",
            false,
            Expect::Timeout("within 1.5s"),
            Duration::from_millis(1500),
            &filter,
        )
    }));
    // A launcher that forks the server (no exec): ending the child must end the grandchild
    // that holds the pipe, or the run would wait for it forever.
    let suite_l = Arc::clone(&suite);
    trials.push(Trial::test("fault::hang-behind-a-launcher", move || {
        let filter = Filter {
            ids: vec!["link-page-*".into(), "link-single-*".into()],
            ..Filter::default()
        };
        check(
            &suite_l,
            "hang",
            true,
            Expect::Timeout("within 1.5s"),
            Duration::from_millis(1500),
            &filter,
        )
    }));
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

#[derive(Clone, Copy)]
enum Expect {
    Crash(&'static str),
    Timeout(&'static str),
    Harness(&'static str),
}

fn reference() -> Implementation {
    Implementation::new(
        "reference",
        &["iova_api", "streaming", "sg", "linux_exact"],
        || Box::new(dmaconf_reference::Reference::new()),
    )
}

fn run(suite: &Suite, door: &dyn dmaconf_engine::Door, filter: &Filter) -> Result<Report, Failed> {
    Ok(run_suite(suite, door, &[Profile::Linux], filter, |_| {})?)
}

fn check(
    suite: &Suite,
    mode: &str,
    launched: bool,
    expect: Expect,
    timeout: Duration,
    filter: &Filter,
) -> Result<(), Failed> {
    let baseline = run(suite, &reference(), filter)?;
    let exe = std::env::current_exe()?.display().to_string();
    let mut command = vec![exe, "--wire-child".into(), mode.into()];
    if launched {
        // `sh -c` with a command after the server must fork it rather than exec it.
        let launcher = ["/bin/sh", "-c", r#""$0" "$@"; exit $?"#];
        command.splice(0..0, launcher.map(String::from));
    }
    let wire = Wire::start(&command, timeout)?;
    let report = run(suite, &wire.implementation(), filter)?;

    let (mut hit, mut last_hit) = (0, false);
    for (want, got) in baseline.vectors.iter().zip(&report.vectors) {
        last_hit = false;
        assert_eq!(want.id, got.id);
        let got_v = &got.results[&Profile::Linux];
        // The step at which the first run reaching a third link stops, from the vector's steps.
        let third_link = want.trace.as_ref().and_then(|t| {
            t.runs.iter().find_map(|r| {
                r.steps
                    .iter()
                    .filter(|s| s.action == "dma_iova_link")
                    .nth(2)
                    .map(|s| s.index)
            })
        });
        let Some(step) = third_link else {
            if got_v.class != want.results[&Profile::Linux].class {
                return Err(format!(
                    "{mode}: {} was not hit but is {:?}: {:?}",
                    got.id, got_v.class, got_v.reason
                )
                .into());
            }
            continue;
        };
        hit += 1;
        last_hit = true;
        let (class, text) = match expect {
            Expect::Crash(t) => (ResultClass::Crash, t),
            Expect::Timeout(t) => (ResultClass::Timeout, t),
            Expect::Harness(t) => (ResultClass::HarnessError, t),
        };
        let reason = got_v.reason.clone().unwrap_or_default();
        // Counted from 1, with the step's line after the action.
        let at = format!("step {} (dma_iova_link, line ", step + 1);
        if got_v.class != class || !reason.contains(text) || !reason.contains(&at) {
            return Err(format!(
                "{mode}: {} should be {class:?} at {at} saying `{text}`, is {:?}: {reason}",
                got.id, got_v.class
            )
            .into());
        }
    }
    if hit == 0 {
        return Err(format!("{mode}: no selected vector reaches a third link").into());
    }
    // One child to start with, one more for the vector after each fault.
    let children = wire.stats().children;
    if children != hit + 1 - u64::from(last_hit) {
        return Err(format!("{mode}: {hit} faults but {children} children").into());
    }
    Ok(())
}

/// The misbehaving child: the reference served over stdio, with `mode` done at the third
/// `iova_link` request of each device.
fn child(mode: &str) {
    let reference = reference();
    let make = || reference.instance();
    let served = Served {
        name: "reference (misbehaving)",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: &reference.capabilities,
        make: &make,
    };
    let input = Tripwire {
        inner: io::stdin().lock(),
        line: Vec::new(),
        pos: 0,
        links: 0,
        mode: mode.to_string(),
    };
    if let Err(e) = serve(input, io::stdout().lock(), &served) {
        eprintln!("misbehaving child: {e}");
    }
}

/// Passes the runner's lines to the server, counting `iova_link` requests per device.
struct Tripwire<R> {
    inner: R,
    line: Vec<u8>,
    pos: usize,
    links: u32,
    mode: String,
}

impl<R: BufRead> Tripwire<R> {
    fn inspect(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        if text.contains(r#""call":"create""#) {
            self.links = 0;
        }
        if text.contains(r#""call":"iova_link""#) {
            self.links += 1;
            if self.links == 3 {
                misbehave(&self.mode);
            }
        }
    }
}

fn misbehave(mode: &str) {
    let say = |line: &str| {
        let mut out = io::stdout().lock();
        let _ = out.write_all(line.as_bytes());
        let _ = out.flush();
    };
    match mode {
        "segv" => {
            // No core file for a deliberate crash.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: plain libc calls with valid arguments: setrlimit reads the struct we pass;
            // signal puts back the default action (std's own SIGSEGV handler would otherwise
            // treat a raised signal as spurious and return); raise sends this process the signal.
            unsafe {
                libc::setrlimit(libc::RLIMIT_CORE, &none);
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
        }
        "abort" => std::process::abort(),
        "exit" => std::process::exit(3),
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        "garbage" => say("this is not json\n"),
        "wrong-id" => say("{\"id\":4242,\"ret\":0}\n"),
        "unknown-callback" => say("{\"id\":1,\"call\":\"frobnicate\"}\n"),
        other => panic!("unknown misbehaviour `{other}`"),
    }
}

impl<R: BufRead> Read for Tripwire<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let data = self.fill_buf()?;
        let n = data.len().min(buf.len());
        buf[..n].copy_from_slice(&data[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tripwire<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos == self.line.len() {
            self.line.clear();
            self.pos = 0;
            self.inner.read_until(b'\n', &mut self.line)?;
            self.inspect();
        }
        Ok(&self.line[self.pos..])
    }
    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.line.len());
    }
}
