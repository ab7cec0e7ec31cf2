//! Hostile trees under `--root` (issue 15): one bad input costs one result, named correctly; a
//! walk never loops, never hangs on a FIFO, never runs a vector twice.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A scratch root holding every preset and the `state` vectors (3 vectors on `x86-vtd-q35`).
fn scratch(name: &str) -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = std::env::temp_dir().join(format!("dmaconf-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let presets = root.join("vectors/presets");
    std::fs::create_dir_all(&presets).unwrap();
    std::fs::create_dir_all(root.join("vectors/state")).unwrap();
    std::fs::create_dir_all(root.join("spec")).unwrap();
    for e in std::fs::read_dir(repo.join("spec")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), root.join("spec").join(e.file_name())).unwrap();
    }
    for e in std::fs::read_dir(repo.join("vectors/presets")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), presets.join(e.file_name())).unwrap();
    }
    std::fs::copy(
        repo.join("vectors/state/state.yaml"),
        root.join("vectors/state/state.yaml"),
    )
    .unwrap();
    root
}

struct Outcome {
    /// (vector id, semantic class, semantic reason)
    vectors: Vec<(String, String, String)>,
    errors: Vec<String>,
}

/// Runs `dmaconf run --profile semantic --format json` on `root`; a run that does not finish in
/// 60 s is killed and fails the test (it would hang a user's CI).
fn run(root: &Path) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .args(["--root"])
        .arg(root)
        .args([
            "run",
            "--profile",
            "semantic",
            "--format",
            "json",
            "--no-trace",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("dmaconf run on {} did not finish in 60 s", root.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("run prints one JSON document");
    let vectors = doc["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let r = &v["results"]["semantic"];
            (
                v["id"].as_str().unwrap().to_string(),
                r["class"].as_str().unwrap_or_default().to_string(),
                r["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let errors = doc["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    Outcome { vectors, errors }
}

fn classes(o: &Outcome) -> Vec<&str> {
    o.vectors.iter().map(|(_, c, _)| c.as_str()).collect()
}

#[test]
fn a_malformed_preset_costs_only_the_vectors_that_name_it() {
    let root = scratch("bad-preset");
    assert_eq!(classes(&run(&root)), ["pass", "pass", "pass"]);

    // A preset no vector here uses: the vectors still pass; the file is named among the errors.
    std::fs::write(
        root.join("vectors/presets/x86-direct.yaml"),
        "id: [unclosed\n",
    )
    .unwrap();
    let o = run(&root);
    assert_eq!(classes(&o), ["pass", "pass", "pass"]);
    assert!(
        o.errors.iter().any(|e| e.contains("x86-direct.yaml:")),
        "{:?}",
        o.errors
    );

    // The preset they use: each is a harness_error naming that preset's file, not another.
    std::fs::write(
        root.join("vectors/presets/x86-vtd-q35.yaml"),
        "id: [unclosed\n",
    )
    .unwrap();
    let o = run(&root);
    for (id, class, reason) in &o.vectors {
        assert_eq!(class, "harness_error", "{id}");
        assert!(reason.contains("x86-vtd-q35.yaml:"), "{id}: {reason}");
        assert!(!reason.contains("x86-direct"), "{id}: {reason}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_preset_whose_id_is_not_its_file_name_is_named() {
    let root = scratch("renamed-preset");
    let good = root.join("vectors/presets/x86-vtd-q35.yaml");
    let text = std::fs::read_to_string(&good).unwrap();
    std::fs::write(
        &good,
        text.replacen("id: x86-vtd-q35", "id: x86-vtd-q99", 1),
    )
    .unwrap();
    let o = run(&root);
    for (id, class, reason) in &o.vectors {
        assert_eq!(class, "harness_error", "{id}");
        assert!(
            reason.contains("declares id `x86-vtd-q99`"),
            "{id}: {reason}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn symlink_loops_are_reported_and_vectors_run_once() {
    let root = scratch("loops");
    std::os::unix::fs::symlink("..", root.join("vectors/state/up")).unwrap();
    std::os::unix::fs::symlink(".", root.join("vectors/state/here")).unwrap();
    let o = run(&root);
    assert_eq!(classes(&o), ["pass", "pass", "pass"], "{:?}", o.vectors);
    assert!(
        o.errors
            .iter()
            .filter(|e| e.contains("symbolic link loop"))
            .count()
            >= 2,
        "{:?}",
        o.errors
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_fifo_named_yaml_is_refused_not_read() {
    let root = scratch("fifo");
    let fifo = root.join("vectors/state/pipe.yaml");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let o = run(&root);
    assert_eq!(classes(&o), ["pass", "pass", "pass"]);
    assert!(
        o.errors
            .iter()
            .any(|e| e.contains("pipe.yaml") && e.contains("not a regular file")),
        "{:?}",
        o.errors
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// `dmaconf --root ROOT ARGS...`: exit code, stdout, stderr.
fn dmaconf_at(root: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `dmaconf ARGS...` on the repository's own suite.
fn dmaconf(args: &[&str]) -> (Option<i32>, String, String) {
    dmaconf_at(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."), args)
}

#[test]
fn an_empty_selection_is_an_error_not_a_green_run() {
    for args in [
        ["--filter", "no-such-vector-*"],
        ["--rule", "NOPE-99"],
        ["--area", "no-such-area"],
    ] {
        let mut all = vec!["run", "--profile", "semantic"];
        all.extend(args);
        let (code, _, err) = dmaconf(&all);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains("no vector matches"), "{args:?}: {err}");
        assert!(err.contains(args[1]), "{args:?} named: {err}");
    }
    // A selection that matches still runs.
    let (code, out, err) = dmaconf(&["run", "--profile", "semantic", "--area", "state"]);
    assert_eq!(code, Some(0), "{out}{err}");
}

/// Vectors `lint` rejects, each for one reason, and where each reason is (file line, column).
const REJECTED: &str = "format: 1
area: state
defaults: {platform: x86-vtd-q35, requires: [iova_api]}
---
id: state-fields-and-accessors
rules: [STATE-02]
why: a second vector with an id the suite already uses
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
---
id: cites-an-unknown-rule
rules: [STATE-02, NOPE-01]
why: cites a rule spec/ does not define
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
---
id: names-an-unknown-preset
rules: [STATE-02]
why: its platform is no preset
platform: x86-vtd-q99
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
---
id: names-a-state-never-made
rules: [STATE-02]
why: s9 is never made
buffers:
  a: {size: 0x1000}
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
  - device.read: {addr: s9.addr, len: 4}
---
id: names-a-buffer-never-declared
rules: [STATE-02]
why: zz is no buffer
buffers:
  a: {size: 0x1000}
steps:
  - dma_iova_try_alloc: {state: s0, phys: buf.zz, size: 0x1000}
---
id: unmaps-a-list-never-mapped
rules: [STATE-02]
why: list l was never mapped
steps:
  - dma_unmap_sg: {list: l, dir: to_device}
---
id: expects-a-state-never-made
rules: [STATE-02]
why: the expectation names s7
buffers:
  a: {size: 0x1000}
steps:
  - dma_iova_try_alloc: {state: s0, phys: buf.a, size: 0x1000}
    expect: {state: {addr: s7.addr}}
";

/// (vector id, what its error must say, the line:column it must point at: the vector's `id:`
/// line, or the step's own line)
const REASONS: &[(&str, &str, &str)] = &[
    (
        "state-fields-and-accessors",
        "is already used at",
        "bad.yaml:5:1",
    ),
    (
        "cites-an-unknown-rule",
        "cites rule NOPE-01, which spec/ does not define",
        "bad.yaml:12:1",
    ),
    (
        "names-an-unknown-preset",
        "unknown platform preset `x86-vtd-q99`",
        "bad.yaml:19:1",
    ),
    ("names-a-state-never-made", "no state `s9`", "bad.yaml:35:5"),
    (
        "names-a-buffer-never-declared",
        "no buffer `zz`",
        "bad.yaml:43:5",
    ),
    ("unmaps-a-list-never-mapped", "no list `l`", "bad.yaml:49:5"),
    (
        "expects-a-state-never-made",
        "no state `s7`",
        "bad.yaml:57:5",
    ),
];

#[test]
fn run_refuses_what_lint_rejects_each_vector_named_at_its_line() {
    let root = scratch("rejected");
    std::fs::write(root.join("vectors/state/zz-bad.yaml"), REJECTED).unwrap();
    let o = run(&root);
    // The three good vectors of state.yaml still pass, each once.
    let passes: Vec<&str> = o
        .vectors
        .iter()
        .filter(|(_, c, _)| c == "pass")
        .map(|(id, _, _)| id.as_str())
        .collect();
    assert_eq!(passes.len(), 3, "{:?}", o.vectors);
    for (id, says, at) in REASONS {
        let at = at.replace("bad.yaml", "zz-bad.yaml");
        let (_, class, reason) = o
            .vectors
            .iter()
            .find(|(v, c, _)| v == id && c != "pass")
            .unwrap_or_else(|| panic!("{id} is not refused: {:?}", o.vectors));
        assert_eq!(class, "harness_error", "{id}: {reason}");
        assert!(reason.contains(says), "{id}: {reason}");
        assert!(reason.contains(&at), "{id} at {at}: {reason}");
    }

    // lint names each one at the same place.
    let (_, _, err) = dmaconf_at(&root, &["lint"]);
    for (id, says, at) in REASONS {
        let at = at.replace("bad.yaml", "zz-bad.yaml");
        assert!(
            err.lines().any(|l| l.contains(says) && l.contains(&at)),
            "lint misses {id} ({says} at {at}):\n{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// `dmaconf run ... | head`: the reader goes away early; the runner must stop writing quietly,
/// not panic on the broken pipe.
#[test]
fn a_reader_that_goes_away_is_not_a_panic() {
    use std::io::Read;
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for format in ["json", "human"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dmaconf"))
            .arg("--root")
            .arg(&repo)
            .args(["run", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 16];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe's read end is closed here; the rest of the report has nowhere to go.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{format}: {err}");
        assert_ne!(out.status.code(), Some(101), "{format}: {err}");
    }
}

/// Inputs that used to run and give a silently wrong answer (issue 15 item 7).
const SILENTLY_WRONG: &str = "format: 1
area: state
defaults: {platform: x86-vtd-q35, requires: [iova_api]}
---
id: fills-a-buffer-above-16-mib
rules: [STATE-02]
why: the fill of a 32 MiB buffer used to be skipped, so its last bytes read as zeros
buffers:
  big: {size: 0x2000000, at: 0x100000000, fill: 7}
steps:
  - cpu.read: {addr: buf.big.end - 0x10, len: 0x10}
    expect: {data: {buf: big, at: 0x1fffff0}}
---
id: ends-at-the-top-of-the-address-space
rules: [STATE-02]
why: buf.top.end is 2^64, which used to wrap to 0
buffers:
  top: {size: 0x1000, at: 0xFFFFFFFFFFFFF000}
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
---
id: writes-an-octal-number
rules: [STATE-02]
why: 0o777 is neither decimal nor 0x
steps:
  - state.set: {state: s0, addr: 0o777, size: 0x1000}
";

#[test]
fn silently_wrong_inputs_are_errors_at_their_place() {
    let root = scratch("silently-wrong");
    std::fs::write(root.join("vectors/state/zz-wrong.yaml"), SILENTLY_WRONG).unwrap();
    let o = run(&root);
    // (vector, what its error says, where: the vector's first line, or the number's line:column)
    for (id, says, at) in [
        ("fills-a-buffer-above-16-mib", "`fill`", "zz-wrong.yaml:5:1"),
        (
            "ends-at-the-top-of-the-address-space",
            "past the 64-bit",
            "zz-wrong.yaml:14:1",
        ),
        (
            "writes-an-octal-number",
            "decimal or `0x`",
            "zz-wrong.yaml:27:34",
        ),
    ] {
        let (_, class, reason) = o
            .vectors
            .iter()
            .find(|(v, _, _)| v == id)
            .unwrap_or_else(|| panic!("{id} missing: {:?}", o.vectors));
        assert_eq!(class, "harness_error", "{id}: {reason}");
        assert!(reason.contains(says), "{id}: {reason}");
        assert!(reason.contains(at), "{id} at {at}: {reason}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Messages a newcomer can act on (issue 15 item 6).
fn messages_file() -> String {
    let mut text = String::from(
        "format: 1
area: state
defaults: {platform: x86-vtd-q35, requires: [iova_api]}
---
id: m-duplicate-key
rules: [STATE-02]
rules: [STATE-02]
why: a key given twice
steps:
  - dma_use_iova: {state: s0}
---
id: m-too-large
rules: [STATE-02]
why: a decimal past 2^64
steps:
  - state.set: {state: s0, addr: 18446744073709551616, size: 1}
---
id: m-data
rules: [STATE-02]
why: reads buffer a (fill 3) expecting seed 4
buffers:
  a: {size: 0x1000, fill: 3}
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
  - cpu.read: {addr: buf.a, len: 4}
    expect: {data: {seed: 4}}
---
id: m-events
rules: [STATE-02]
why: one event expected, one other happens
buffers:
  a: {size: 0x1000}
steps:
  - dma_iova_try_alloc: {state: s0, phys: buf.a, size: 0x1000}
  - dma_iova_link: {state: s0, phys: buf.a, offset: 0, size: 0x1000, dir: to_device}
    linux:
      events:
        - warn: direct_overflow
---
id: m-step-error
rules: [STATE-02]
why: the second step reads more than one access moves
buffers:
  a: {size: 0x1000}
steps:
  - dma_use_iova: {state: s0}
    expect: {ret: false}
  - cpu.read: {addr: buf.a, len: 0x2000000}
---
id: m-budget
rules: [STATE-02]
why: more steps than the YAML budget holds
steps:
",
    );
    for _ in 0..60_000 {
        text.push_str("  - dma_use_iova: {state: s0}\n");
    }
    text
}

#[test]
fn messages_name_the_place_the_pattern_and_the_number() {
    let root = scratch("messages");
    std::fs::write(root.join("vectors/state/zz-messages.yaml"), messages_file()).unwrap();
    let (_, text, _) = dmaconf_at(&root, &["run", "--profile", "linux", "--filter", "m-*"]);
    let section = |id: &str| -> String {
        let head = format!("::{id} (");
        let start = text
            .find(&head)
            .unwrap_or_else(|| panic!("{id} missing:\n{text}"));
        let rest = &text[start..];
        let end = rest[1..].find("\n    ").map_or(rest.len(), |e| e + 1);
        let more = rest[end..]
            .find("\n[A-Z]")
            .or_else(|| rest[end..].find("\nimplementation:"));
        rest[..end + more.unwrap_or(0)].to_string()
    };
    // Nothing of the library or of Rust's Debug format reaches the user.
    for leak in [
        "DuplicateKeyPolicy",
        "from_str_multiple",
        "Nodes {",
        "floating point",
    ] {
        assert!(!text.contains(leak), "{leak}:\n{text}");
    }
    let dup = section("m-duplicate-key");
    assert!(
        dup.contains("zz-messages.yaml:7:1: duplicate key `rules`"),
        "{dup}"
    );
    let big = section("m-too-large");
    assert!(
        big.contains("`18446744073709551616` is too large a number"),
        "{big}"
    );
    // Steps count from 1 and carry their own line; the expected pattern is named.
    let data = section("m-data");
    assert!(
        data.contains("step 2 (line 26), data: expected 4 bytes of pattern seed 4"),
        "{data}"
    );
    let events = section("m-events");
    assert!(events.contains("step 2 (line 36), events: expected 1 event, actual the same number, 1 of them different"), "{events}");
    assert!(!events.contains("1 events"), "{events}");
    let step = section("m-step-error");
    assert!(step.contains("step 2 (cpu.read, line 49)"), "{step}");
    // The budget is reported at a line of the file, in the format's words.
    let budget = section("m-budget");
    assert!(budget.contains("zz-messages.yaml:"), "{budget}");
    assert!(budget.contains("about 19,000 steps"), "{budget}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_reference_passes_the_fail_nth_sweep() {
    let (code, out, err) = dmaconf(&["run", "--fail-nth", "--area", "link"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let summary = out.lines().last().unwrap_or_default();
    assert!(summary.ends_with(", 0 unclean"), "{out}");
    let calls: u64 = summary
        .split(", ")
        .find_map(|p| p.strip_suffix(" fallible platform calls"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(calls > 0, "the link vectors make no fallible call: {out}");
    // An implementation behind a process boundary cannot be injected into.
    let (code, _, err) = dmaconf(&["run", "--fail-nth", "--impl", "wire:true"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("in-process"), "{err}");
}

/// "Link 128 MiB in 4 KiB pieces": 32,768 links (past the ~19,000 steps the YAML budget lets a
/// vector list), written as one repeated step (issue 15 item 8). The 1 GiB workload of the
/// issue (262,144 links) runs the same way; kept smaller here for the suite's memory.
const REPEATED: &str = "format: 1
area: state
defaults: {platform: x86-vtd-q35, requires: [iova_api]}
---
id: link-128-mib-in-4-kib-pieces
rules: [STATE-02]
why: >
  One try_alloc of 128 MiB, 32,768 links of one 4 KiB page each at offset i * 4 KiB, one sync,
  one destroy of the whole length: every link returns 0 (LINK rules) and nothing is left.
buffers:
  a: {size: 0x8000000, at: 0x100000000}
steps:
  - dma_iova_try_alloc: {state: s0, phys: buf.a, size: 0x8000000}
    expect: {ret: true}
  - dma_iova_link: {state: s0, phys: buf.a + i * 0x1000, offset: i * 0x1000, size: 0x1000, dir: to_device}
    repeat: 32768
    expect: {ret: 0}
  - dma_iova_sync: {state: s0, offset: 0, size: 0x8000000}
    expect: {ret: 0}
  - dma_iova_destroy: {state: s0, mapped_len: 0x8000000, dir: to_device}
---
id: names-i-outside-a-repeat
rules: [STATE-02]
why: i belongs to repeated steps
steps:
  - state.set: {state: s0, addr: i, size: 0x1000}
---
id: repeats-zero-times
rules: [STATE-02]
why: a repetition count of 0
steps:
  - dma_use_iova: {state: s0}
    repeat: 0
";

#[test]
fn a_repeated_step_writes_a_large_workload() {
    let root = scratch("repeat");
    std::fs::write(root.join("vectors/state/zz-repeat.yaml"), REPEATED).unwrap();
    let o = run(&root);
    let find = |id: &str| {
        o.vectors
            .iter()
            .find(|(v, _, _)| v == id)
            .unwrap_or_else(|| panic!("{id} missing: {:?}", o.vectors))
    };
    let (_, class, reason) = find("link-128-mib-in-4-kib-pieces");
    assert_eq!(class, "pass", "{reason}");
    let (_, class, reason) = find("names-i-outside-a-repeat");
    assert_eq!(class, "harness_error");
    assert!(
        reason.contains("zz-repeat.yaml:26:5") && reason.contains("`repeat`"),
        "{reason}"
    );
    let (_, class, reason) = find("repeats-zero-times");
    assert_eq!(class, "harness_error");
    assert!(
        reason.contains("zz-repeat.yaml:32:5") && reason.contains("repeats 1 to"),
        "{reason}"
    );
    let _ = std::fs::remove_dir_all(&root);
}
