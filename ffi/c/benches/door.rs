//! The full suite (every vector, every preset it names) executed through the in-process
//! reference and through the reference exported over the C ABI and loaded by the C door in
//! process. Target (issue 10): the C door at most 1.5 times the in-process time.
//! `cargo bench -p dmaconf-c --bench door`.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use dmaconf_engine::{load_suite, Door, Implementation, Suite};
use dmaconf_reference::Reference;

fn run_all(suite: &Suite, implementation: &Implementation) -> usize {
    let mut runs = 0;
    for loaded in &suite.vectors {
        if let Ok(v) = &loaded.vector {
            runs += implementation.execute(v, &suite.presets).runs.len();
        }
    }
    runs
}

fn suite(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let suite = load_suite(&root.join("vectors"));
    let so = std::env::current_exe()
        .expect("the bench binary's path")
        .parent()
        .expect("its directory")
        .join("libdmaconf_reference_c.so");
    let plugin = dmaconf_c::load(&so).expect("the reference plug-in loads");
    let in_process = Implementation::new(
        "reference",
        &["iova_api", "streaming", "sg", "linux_exact"],
        || Box::new(Reference::new()),
    );
    let through_c = plugin.implementation();
    assert_eq!(run_all(&suite, &in_process), run_all(&suite, &through_c));

    // Paired rounds, alternating the two, so a machine whose load changes during the run (CI,
    // a shared host) moves both sides alike; the ratio is the figure the target is on.
    let (mut a, mut b) = (Duration::ZERO, Duration::ZERO);
    const ROUNDS: u32 = 30;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        black_box(run_all(&suite, &in_process));
        a += t.elapsed();
        let t = Instant::now();
        black_box(run_all(&suite, &through_c));
        b += t.elapsed();
    }
    println!(
        "paired, {ROUNDS} rounds of the full suite: in process {:.2} ms, through the C door {:.2} ms, ratio {:.3}",
        a.as_secs_f64() * 1e3 / f64::from(ROUNDS),
        b.as_secs_f64() * 1e3 / f64::from(ROUNDS),
        b.as_secs_f64() / a.as_secs_f64()
    );

    let mut group = c.benchmark_group("suite");
    group.sample_size(20);
    group.bench_function("reference in process", |b| {
        b.iter(|| run_all(&suite, &in_process))
    });
    group.bench_function("reference through the C door in process", |b| {
        b.iter(|| run_all(&suite, &through_c))
    });
    group.finish();
}

criterion_group!(benches, suite);
criterion_main!(benches);
