#!/usr/bin/env bash
# `just gpu-bundle`: builds the CUDA path here (no GPU needed; docs/gpu/README.md) and packs
# the `valley` binary, the plugins and the GPU check into target/valley-gpu.tar.gz (< 64 MiB) to
# carry to a lent GPU machine, where `tar xzf valley-gpu.tar.gz && bash valley-gpu/check.sh`
# runs the check. Needs `bash docs/gpu/setup-cuda13.sh` once (CUDA 13.0 from PyPI wheels).
# A cold build of candle's CUDA kernels takes 20–35 min on two cores: never in CI. The build has
# its own target directory (target/cuda), so the CPU builds are not disturbed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cuda_env="${VALLEY_CUDA_ENV:-$HOME/.cache/valley-cuda13/env13.sh}"
[ -f "$cuda_env" ] || { echo "$cuda_env: missing; run: bash docs/gpu/setup-cuda13.sh" >&2; exit 1; }
# shellcheck source=/dev/null
source "$cuda_env"
export CARGO_TARGET_DIR="${VALLEY_CUDA_TARGET_DIR:-$root/target/cuda}"
plugins=(valley-trainer-candle-sft valley-evaluator-code-exec valley-sampler-random
  valley-sampler-nested-size valley-sampler-easy-first valley-sampler-hard-first
  valley-sampler-correctness valley-sampler-difficulty-band)
cd "$root"
cargo build --release -p valley "${plugins[@]/#/-p}" \
  --features valley-trainer-candle-sft/cuda,valley-evaluator-code-exec/cuda
out="$root/target/valley-gpu"
rm -rf "$out" && mkdir -p "$out/plugins"
cp "$CARGO_TARGET_DIR/release/valley" "$out/"
cp "$CARGO_TARGET_DIR"/release/libvalley_{trainer,evaluator,sampler}_*.so "$out/plugins/"
strip "$out/valley" "$out"/plugins/*.so
cp benches/gpu/check.sh benches/gpu/qwen2-0.5b.json benches/torch_train.py \
  docs/gpu/cuda-libs.sh "$out/"
git rev-parse HEAD > "$out/COMMIT" 2>/dev/null || true
tar czf "$root/target/valley-gpu.tar.gz" -C "$root/target" valley-gpu
size=$(stat -c %s "$root/target/valley-gpu.tar.gz")
echo "target/valley-gpu.tar.gz: $((size / 1024 / 1024)) MiB"
if [ "$size" -ge $((64 * 1024 * 1024)) ]; then
  echo "over the 64 MiB a device call carries" >&2
  exit 1
fi
