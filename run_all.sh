#!/usr/bin/env bash
# Set up the environment and reproduce the study.
#
#   ./run_all.sh          make .venv if missing, install, run every notebooks/NN_*.ipynb through
#                         papermill at $PROFILE (default cpu); outputs go to results/<profile>/;
#                         then regenerate results/SUMMARY.md and results/bench.json; cpu and gpu
#                         first install Fashion-MNIST (Debian package dataset-fashion-mnist) if
#                         DATA_ROOT is unset and apt-get and root are available
#   ./run_all.sh test     the same environment, then ruff (package, tests, notebooks) and pytest
#                         (unit tests, notebook conventions, notebook smoke runs)
#   ./run_all.sh setup    only make / update the environment
#   ./run_all.sh verify   run the notebooks at $PROFILE into verify/ (its own results and an empty
#                         cache: a cold rerun), then compare every summary.json with the committed
#                         one (python -m pruning_core.verify); FRESH=<results root> compares a run
#                         made before instead of running
#
# Environment: PROFILE=smoke|cpu|gpu (smoke and cpu run on the CPU on any machine; gpu needs CUDA
# and stops at once, saying why, without it), DEVICE=cuda|cpu overrides the profile's device
# (DEVICE=cuda PROFILE=smoke: the quick check of the GPU path), FORCE=1 re-runs notebooks whose outputs are already complete
# for the same code and profile, PYTHON=python3.11 picks the interpreter that makes .venv,
# ONLY=02 runs only notebooks whose name starts with that prefix, BENCH=0 skips the benchmark
# (by default it runs after any notebook ran; run it on a quiet machine, its ratios are timings),
# PRUNING_CORE_RESULTS / PRUNING_CORE_CACHE move the results and the cache elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
ROOT="$PWD"
MODE="${1:-run}"
PROFILE="${PROFILE:-cpu}"
PYTHON="${PYTHON:-python3}"

case "$PROFILE" in
  smoke|cpu|gpu) ;;
  *) echo "run_all.sh: unknown PROFILE '$PROFILE': use smoke, cpu or gpu" >&2; exit 2 ;;
esac

setup() {
  if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
  fi
  local stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    echo "[setup] installing pruning_core and its pinned dependencies (log: .venv/install.log)"
    if ! .venv/bin/python -m pip install -e ".[dev]" >.venv/install.log 2>&1; then
      grep -v '^WARNING: Location' .venv/install.log | tail -40 >&2
      echo "run_all.sh: installation failed; full log in .venv/install.log" >&2
      exit 1
    fi
    rm -f .venv/.installed-*
    touch "$stamp"
  fi
  export PATH="$ROOT/.venv/bin:$PATH"
  export PYTHONUNBUFFERED=1
}

# Real data that installs offline: Fashion-MNIST from the Debian / Ubuntu package
# dataset-fashion-mnist (the loader also reads $DATA_ROOT, and downloads where a network exists).
fetch_data() {
  local deb=/usr/share/datasets/fashion-mnist
  if [ -n "${DATA_ROOT:-}" ] || [ -f "$deb/train-images-idx3-ubyte.gz" ]; then
    echo "[data] Fashion-MNIST: ${DATA_ROOT:-$deb}"
    return
  fi
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[data] installing the Debian package dataset-fashion-mnist (apt-get; log: .venv/apt.log)"
    if { apt-get install -y dataset-fashion-mnist || { apt-get update && apt-get install -y dataset-fashion-mnist; }; } >.venv/apt.log 2>&1; then
      echo "[data] Fashion-MNIST installed in $deb"
    else
      echo "[data] apt-get could not install dataset-fashion-mnist (see .venv/apt.log); the notebooks will say where else to put the files" >&2
    fi
  else
    echo "[data] Fashion-MNIST not found and apt-get/root not available: set DATA_ROOT, or run 'sudo apt-get install dataset-fashion-mnist'"
  fi
}

# The hash that says whether a notebook's outputs are complete for this code and profile.
code_hash() {
  { cat "$1" pyproject.toml; find pruning_core -name '*.py' -o -name '*.pt' | LC_ALL=C sort | xargs cat; echo "$PROFILE"; } |
    sha256sum | cut -c1-16
}

run_notebooks() {
  local t_all=$SECONDS n=0 skipped=0
  shopt -s nullglob
  local notebooks=(notebooks/[0-9][0-9]_*.ipynb)
  for nb in "${notebooks[@]}"; do
    local stem; stem="$(basename "$nb" .ipynb)"
    if [ -n "${ONLY:-}" ] && [[ "$stem" != "$ONLY"* ]]; then continue; fi
    local out="${PRUNING_CORE_RESULTS:-results}/$PROFILE/$stem"
    local stamp="$out/.complete"
    local hash; hash="$(code_hash "$nb")"
    if [ "${FORCE:-0}" != "1" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ]; then
      echo "[skip] $stem: outputs in $out are complete for this code and PROFILE=$PROFILE (FORCE=1 re-runs)"
      skipped=$((skipped + 1))
      continue
    fi
    mkdir -p "$out"
    rm -f "$stamp"
    local t0=$SECONDS
    echo "[run ] $stem at PROFILE=$PROFILE ..."
    if ! papermill -k python3 --cwd notebooks "$nb" "$out/$stem.ipynb" -p PROFILE "$PROFILE" --no-progress-bar; then
      echo "run_all.sh: FAILED $nb after $((SECONDS - t0)) s at PROFILE=$PROFILE." >&2
      echo "  papermill's error is above; the executed notebook with the failing cell is $out/$stem.ipynb" >&2
      exit 1
    fi
    echo "$hash" >"$stamp"
    n=$((n + 1))
    echo "[done] $stem in $((SECONDS - t0)) s -> $out/"
  done
  python -m pruning_core.summary --profile "$PROFILE"
  if [ "$n" -gt 0 ] && [ "${BENCH:-1}" != 0 ]; then
    # smoke: a tiny run into bench_quick.json; otherwise the full benchmark, with the PuRL step
    # also measured without the prefix cache so that bench.json holds both sides of that ratio
    local bench_args="--compare-full --memo"
    [ "$PROFILE" = smoke ] && bench_args="--quick"
    echo "[bench] python -m pruning_core.bench $bench_args"
    python -m pruning_core.bench $bench_args >/dev/null
  fi
  echo "[all ] $n notebook(s) run, $skipped already complete, $((SECONDS - t_all)) s; summary: results/SUMMARY.md"
}

case "$MODE" in
  setup) setup ;;
  test)
    setup
    echo "[test] ruff (package, tests and the notebooks' cells)"
    ruff check pruning_core tests notebooks solutions
    echo "[test] pytest (unit tests and notebook smoke runs)"
    python -m pytest -q -p no:cacheprovider
    ;;
  run|notebooks)
    setup
    # the device policy first: a gpu run without a usable GPU stops here, with the reason
    python -c 'import sys; from pruning_core.devices import main; sys.exit(main(sys.argv[1:]))' "$PROFILE" || exit 1
    [ "$PROFILE" = smoke ] || fetch_data
    run_notebooks
    ;;
  verify)
    setup
    if [ -z "${FRESH:-}" ]; then
      export PRUNING_CORE_RESULTS="$ROOT/verify/results" PRUNING_CORE_CACHE="$ROOT/verify/cache"
      echo "[verify] a cold run at PROFILE=$PROFILE into verify/ (results and cache of its own)"
      python -c 'import sys; from pruning_core.devices import main; sys.exit(main(sys.argv[1:]))' "$PROFILE" || exit 1
      [ "$PROFILE" = smoke ] || fetch_data
      BENCH=0 run_notebooks
      FRESH="$PRUNING_CORE_RESULTS"
    fi
    python -m pruning_core.verify "$FRESH" --reference "$ROOT/results" --profile "$PROFILE"
    ;;
  *) echo "usage: ./run_all.sh [run|test|setup|verify]" >&2; exit 2 ;;
esac
