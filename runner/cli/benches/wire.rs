//! The whole suite through the wire against the whole suite in process (issue 10: the wire
//! should cost at most 10x the in-process reference).
//!
//! * `suite/in_process`: every vector, both profiles, the reference in this process.
//! * `suite/wire`: the same, the reference served by `dmaconf serve` in a child process: one
//!   iteration starts the child, shakes hands, runs the suite and shuts the child down, as one
//!   `dmaconf run --impl wire:...` does.
//!
//! The ratio is wire / in_process of the two medians. Before measuring, the bench prints the
//! messages and bytes one suite run puts on the wire.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use dmaconf_engine::report::{run_suite, Filter};
use dmaconf_engine::{load_suite, Profile};
use dmaconf_wire::Wire;

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
    g.finish();
}

criterion_group!(benches, suite);
criterion_main!(benches);
