//! What each CI output costs next to the run it reports (the figures of issue 11's note).
//!
//! * `run`: the whole suite against the reference, both profiles (loading excluded).
//! * `results`, `results_trace`, `junit`, `json_lines`, `html`: rendering that run's report.
//!
//! The ratio of an output's median to `run`'s is what `--results`, `--junit` or `--html` add.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use dmaconf_engine::report::{self, json::LineWriter, Filter};
use dmaconf_engine::{load_suite, Profile};

fn outputs(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    let door = dmaconf::reference();
    let run = || report::run_suite(&suite, &door, &Profile::ALL, &Filter::default(), |_| {});
    let r = run().expect("the suite runs");
    let mut g = c.benchmark_group("outputs");
    g.sample_size(20);
    g.bench_function("run", |b| b.iter(|| black_box(run())));
    g.bench_function("results", |b| {
        b.iter(|| {
            black_box(report::results::render(&report::results::snapshot(
                &r, false,
            )))
        })
    });
    g.bench_function("results_trace", |b| {
        b.iter(|| {
            black_box(report::results::render(&report::results::snapshot(
                &r, true,
            )))
        })
    });
    g.bench_function("junit", |b| b.iter(|| black_box(report::junit::junit(&r))));
    g.bench_function("json_lines", |b| {
        b.iter(|| {
            let mut w = LineWriter::new(std::io::sink(), true);
            for v in &r.vectors {
                w.vector(v).expect("sink");
            }
            w.end(&r).expect("sink")
        })
    });
    g.bench_function("html", |b| b.iter(|| black_box(report::html::page(&r))));
    g.finish();
}

criterion_group!(benches, outputs);
criterion_main!(benches);
