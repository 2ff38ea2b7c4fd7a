#!/usr/bin/env bash
# The CPU training-throughput comparison recorded in BENCHMARKS.md ("Fused CPU kernels"): candle-sft
# with the fused kernels, with the composed ops (VALLEY_LM_COMPOSED_OPS=1), and PyTorch eager
# (.venv-torch), back to back, at the default bench shape and at the experiments' shape.
# Usage: bash benches/train_cpu.sh   (after `cargo build --workspace`)
set -u
cd "$(dirname "$0")/.."
echo "commit $(git rev-parse --short HEAD)  $(date -u +%FT%TZ)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in 1 2 3; do
  echo "== default shape, 1 thread, fused (run $i)"; RAYON_NUM_THREADS=1 ./target/debug/valley bench train --steps 40 2>&1 | tail -2
  echo "== default shape, 1 thread, composed (run $i)"; RAYON_NUM_THREADS=1 VALLEY_LM_COMPOSED_OPS=1 ./target/debug/valley bench train --steps 40 --no-reference 2>&1 | tail -1
done
echo "== default shape, 2 threads"; RAYON_NUM_THREADS=2 ./target/debug/valley bench train --steps 40 2>&1 | tail -2
echo "== experiment shape (vocab 2048, 16 x 512), 1 thread"; RAYON_NUM_THREADS=1 ./target/debug/valley bench train --model benches/cpu-student-2048.json --batch 16 --seq 512 --steps 10 2>&1 | tail -2
echo "== experiment shape, composed"; RAYON_NUM_THREADS=1 VALLEY_LM_COMPOSED_OPS=1 ./target/debug/valley bench train --model benches/cpu-student-2048.json --batch 16 --seq 512 --steps 10 --no-reference 2>&1 | tail -1
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
