//! `valley bench train`'s plumbing with the real `candle-sft` plugin: a two-step run prints the
//! model line and a tokens/s row, and the PyTorch reference, run with a Python that has no torch
//! (CI installs none: it is gigabytes), fails with an error that says so. No speed is asserted;
//! the measured numbers live in BENCHMARKS.md.

use std::process::Command;

use valley_e2e::{assert_code, show, stderr, stdout, valley, workspace_root};

#[test]
fn bench_train_without_reference_prints_a_tokens_per_second_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = valley(
        [
            "bench",
            "train",
            "--steps",
            "2",
            "--batch",
            "2",
            "--seq",
            "48",
            "--no-reference",
        ],
        dir.path(),
        &[("RAYON_NUM_THREADS", Some("1"))],
    );
    assert_code(&out, 0);
    let text = stdout(&out);
    // The small from-scratch student over the byte tokenizer (256 bytes + 5 specials).
    assert!(
        text.contains(
            "qwen2 decoder, 4 layers, hidden 128, 4 heads (2 KV), intermediate 384, vocab 261"
        ),
        "{}",
        show(&out)
    );
    assert!(text.contains("batch 2 × seq 48 = 96 tokens/step"), "{text}");
    assert!(
        text.contains("2 timed steps after 1 warm-up, 1 threads"),
        "{text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with("candle-sft (candle)"))
        .unwrap_or_else(|| panic!("no candle-sft row\n{text}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let tokens_per_s: f64 = cols[2].parse().unwrap();
    let loss: f64 = cols[4].parse().unwrap();
    assert!(tokens_per_s > 0.0, "{row}");
    // Three steps from a fresh init: the loss is still near ln(261) = 5.56.
    assert!(loss > 3.0 && loss < 7.0, "{row}");
    assert_eq!(cols[5], "-", "no ratio without a reference: {row}");
    let per_cpu_s: f64 = cols[6].parse().unwrap();
    assert!(per_cpu_s > 0.0, "{row}");
    assert_eq!(cols[7], "-", "{row}");
}

#[test]
fn bench_train_reports_a_python_without_torch() {
    let has_torch = Command::new("python3")
        .args(["-c", "import torch"])
        .status()
        .is_ok_and(|s| s.success());
    let dir = tempfile::tempdir().unwrap();
    let script = workspace_root().join("benches/torch_train.py");
    let out = valley(
        [
            "bench",
            "train",
            "--steps",
            "1",
            "--batch",
            "1",
            "--seq",
            "32",
            "--python",
            "python3",
            "--script",
            script.to_str().unwrap(),
        ],
        dir.path(),
        &[("RAYON_NUM_THREADS", Some("1"))],
    );
    if has_torch {
        assert_code(&out, 0);
        assert!(stdout(&out).contains("eager"), "{}", show(&out));
    } else {
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains("PyTorch reference") && err.contains("cannot import torch"),
            "{}",
            show(&out)
        );
    }
}
