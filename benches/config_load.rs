//! Loading the full Entra example: parse, validate, compile. Runs on every reload, so it
//! should stay far below the reload debounce (about 200 ms).

use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use tollgate::config::{Config, ProcessEnv};

fn load_full_example(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/entra-full.yaml");
    let text = std::fs::read_to_string(&path).expect("example config");
    c.bench_function("config_load_entra_full", |b| {
        b.iter(|| Config::from_yaml(std::hint::black_box(&text), Path::new("config"), &ProcessEnv).is_ok())
    });
}

criterion_group!(benches, load_full_example);
criterion_main!(benches);
