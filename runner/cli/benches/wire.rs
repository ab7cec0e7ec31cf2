//! The whole suite through the wire against the whole suite in process (issue 10: the wire
//! should cost at most 10x the in-process reference).
//!
//! * `suite/in_process`: every vector, both profiles, the reference in this process.
//! * `suite/wire`: the same, the reference served by `dmaconf serve` in a child process: one
//!   iteration starts the child, shakes hands, runs the suite and shuts the child down, as one
//!   `dmaconf run --impl wire:...` does.
//! * `suite/c_in_process`: the reference through the C ABI (`libdmaconf_reference_c.so`) loaded
//!   into this process (`--impl c:... --in-process`).
//! * `suite/c_isolated`: the same plug-in in the plug-in host (`dmaconf serve --impl c:...`)
//!   through the wire, the default of `--impl c:...`.
//!
//! Each ratio is a door's median over `in_process`'s, from the same run. Before measuring, the bench prints the
//! messages and bytes one suite run puts on the wire.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dmaconf_engine::report::{run_suite, Filter};
use dmaconf_engine::{load_suite, Profile};
use dmaconf_wire::Wire;

/// `libdmaconf_reference_c.so`, built beside this bench (a dev-dependency's cdylib).
fn reference_so() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's path");
    exe.parent()
        .expect("its directory")
        .join("libdmaconf_reference_c.so")
}

fn serve_command() -> Vec<String> {
    [
        env!("CARGO_BIN_EXE_dmaconf"),
        "serve",
        "--impl",
        "reference",
    ]
    .map(String::from)
    .to_vec()
}

fn suite(c: &mut Criterion) {
    let suite = load_suite(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vectors"));
    let all = Filter::default();
    let reference = dmaconf::reference();
    let limit = Duration::from_secs(60);

    {
        let wire = Wire::start(&serve_command(), limit).expect("start the wire");
        let report = run_suite(&suite, &wire.implementation(), &Profile::ALL, &all, |_| {})
            .expect("run the suite");
        let s = wire.stats();
        eprintln!(
            "one suite run through the wire: {} vectors, {} messages sent, {} received, {} + {} bytes, {} child",
            report.vectors.len(),
            s.sent,
            s.received,
            s.bytes_sent,
            s.bytes_received,
            s.children
        );
    }

    let mut g = c.benchmark_group("suite");
    g.sample_size(10);
    g.bench_function("in_process", |b| {
        b.iter(|| black_box(run_suite(&suite, &reference, &Profile::ALL, &all, |_| {})))
    });
    g.bench_function("wire", |b| {
        b.iter(|| {
            let wire = Wire::start(&serve_command(), limit).expect("start the wire");
            black_box(run_suite(
                &suite,
                &wire.implementation(),
                &Profile::ALL,
                &all,
                |_| {},
            ))
        })
    });
    let so = reference_so();
    let plugin = dmaconf_c::load(&so).expect("load the reference through the C ABI");
    let c_in_process = plugin.implementation();
    g.bench_function("c_in_process", |b| {
        b.iter(|| {
            black_box(run_suite(
                &suite,
                &c_in_process,
                &Profile::ALL,
                &all,
                |_| {},
            ))
        })
    });
    let host = Path::new(env!("CARGO_BIN_EXE_dmaconf"));
    g.bench_function("c_isolated", |b| {
        b.iter(|| {
            let door = dmaconf::c_door_isolated(host, &so, limit);
            black_box(run_suite(
                &suite,
                door.as_ref(),
                &Profile::ALL,
                &all,
                |_| {},
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, suite);
criterion_main!(benches);
