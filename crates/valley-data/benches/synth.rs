//! `cargo bench -p valley-harness --bench synth`: times `valley data synth --train 30000 --eval
//! 500` (generation, running every solution with two Python workers, writing the files) and
//! prints one line per phase. A benchmark, not a test: the numbers go in BENCHMARKS.md.
//! `VALLEY_BENCH_TRAIN` / `VALLEY_BENCH_EVAL` change the size.

use std::time::Instant;

use valley_data::synth::{generate, python_runner::BatchedPython, write_corpus, SynthRequest};

fn main() {
    let size = |var: &str, default: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let request = SynthRequest {
        train: size("VALLEY_BENCH_TRAIN", 30_000),
        eval: size("VALLEY_BENCH_EVAL", 500),
        seed: 1,
    };
    let runner = BatchedPython::default();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let start = Instant::now();
    let corpus = generate(&request, &runner).expect("generates");
    let generated = start.elapsed();
    write_corpus(&corpus, dir.path()).expect("writes");
    let total = start.elapsed();
    let bytes: u64 = std::fs::read_dir(dir.path())
        .expect("lists")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    println!(
        "synth train={} eval={} workers={}: generate+run {:.1}s, write {:.1}s, total {:.1}s; pool {} problems, {} programs run, {:.0} MB written",
        request.train,
        request.eval,
        runner.workers,
        generated.as_secs_f64(),
        (total - generated).as_secs_f64(),
        total.as_secs_f64(),
        corpus.pool.len(),
        corpus.train.len() + corpus.pool.len() + corpus.eval.len(),
        bytes as f64 / 1e6
    );
}
