# valley: thin recipes around cargo; the logic lives in Rust. `just` lists them.
set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Build the host and every plugin (plugins land in target/debug/, where `valley` finds them).
build:
    cargo build --workspace

# Plan and run an experiment: `just experiment easy-first`, `just experiment valley --dry-run`.
experiment NAME *ARGS: build
    ./target/debug/valley experiment {{NAME}} {{ARGS}}

# Run any valley command: `just valley plugins list`.
valley *ARGS: build
    ./target/debug/valley {{ARGS}}

# Every test of the workspace (the plugin libraries are built first: tests load them).
test: build
    cargo test --workspace

# What must pass before a commit: formatting, clippy with warnings as errors, the tests.
check:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    just test
