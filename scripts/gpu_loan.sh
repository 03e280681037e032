#!/usr/bin/env bash
# The real-scale benchmark's GPU jobs on a lent GPU machine that reaches no package registry (issue #16).
#
#   bash scripts/gpu_loan.sh fetch                # here, once: the wheels the GPU image lacks -> .whl/ (git-ignored)
#   bash scripts/gpu_loan.sh run JOBS [ARGS...]   # there (device `run`, carry [".whl"]): install them beside the
#                                                 # image's torch, run `python -m benchmarks.real_scale --part gpu
#                                                 # --jobs JOBS ARGS`, copy its figures (gpu.json) and log to $OUT
#
# e.g. the notebooks under the T4 cap:  bash scripts/gpu_loan.sh run notebooks --workers 9
#
#   bash scripts/gpu_loan.sh room [ARGS...]       # there: the room's server on the real-scale replica (issue #38):
#                                                 # files the replica, serves it with `python -m kandinsky_lab.serve`
#                                                 # and runs `python -m benchmarks.room --no-per-kernel --visitors 1 8 32`
#                                                 # (768², 25 + 50 steps: the app's defaults); figures in $OUT/room.md
#   bash scripts/gpu_loan.sh finetune [ARGS...]   # there: kl.finetune on the real-scale replica (issue #39): seconds per
#                                                 # step and peak memory at 512² and 768², rank 4 and 16, decoder and
#                                                 # prior, gradient checkpointing off and on, then under a T4's 15 GiB
#                                                 # (`python -m benchmarks.finetune_gpu`); figures in $OUT/finetune_gpu.md
#                                                 # FINETUNE_EXERCISE=1: nano under the official ids, on this CPU
# ray's wheel (about 80 MB) is over one device call's 64 MiB: `fetch` splits it into .whl/ray.part-*, and the
# first call carries half of them, a second call (same warm machine) the rest; `room` joins them again.
# The GPU image (/work/.library/device/KINDS.md) has torch, transformers, accelerate, huggingface_hub, numpy,
# pillow, matplotlib, pytest and tqdm; fetch takes every other package of this checkout's .venv at the version
# installed there, for CPython 3.12 on x86-64, leaving out what the GPU jobs never start (the browser, JupyterLab's
# server and Voila). After a run: copy gpu.json to benchmarks/real_scale_gpu.json (README: "Real scale").
set -euo pipefail
cd "$(dirname "$0")/.."

# what the GPU image holds (KINDS.md, read 2026-11-17) or the GPU jobs do not need
SKIP='torch|triton|nvidia-.*|transformers|accelerate|huggingface-hub|hf-xet|tokenizers|safetensors|numpy|pillow|matplotlib|contourpy|cycler|fonttools|kiwisolver|pyparsing|python-dateutil|six|packaging|filelock|fsspec|jinja2|markupsafe|pyyaml|regex|requests|urllib3|idna|certifi|charset-normalizer|tqdm|typing-extensions|sympy|mpmath|networkx|pytest|pluggy|iniconfig|pygments|psutil|attrs|httpx|httpcore|h11|anyio|sniffio|click|typer|rich|shellingham|markdown-it-py|mdurl|setuptools|wheel|pip|zipp|coverage|kandinsky-lab|playwright|greenlet|jupyterlab|jupyterlab-server|jupyter-server|jupyter-server-terminals|jupyter-lsp|jupyter-events|jupyter-builder|notebook-shim|voila|argon2-cffi|argon2-cffi-bindings|terminado|send2trash|babel|json5|async-lru|websockets|websocket-client'

# the wheels, $OUT, the GPU's name, and the real-scale replica filed under the official ids in /tmp/rs/gpu
# (argument 1: nano under those ids instead, for an exercise on a CPU); `room` and `finetune` start with it
replica_in_cache() {
    if ls .whl/*.whl >/dev/null 2>&1; then  # none on a machine that has the packages (an exercise on this CPU)
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    mkdir -p "${OUT:?OUT: where the device run collects what comes back}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" || true
    # the replica in the hub layout (as real_scale's jobs file it); "1": nano under the official ids, on a CPU
    python3 -c "import sys; from pathlib import Path; from benchmarks import hub_cache, replica; from kandinsky_lab.loading import NANO_FOLDER
cache = Path('/tmp/rs/gpu')
if sys.argv[1] == '1': hub_cache.store_kit_folder(NANO_FOLDER, cache)
elif not (hub_cache.repo_folder(cache, 'kandinsky-community/kandinsky-2-2-decoder') / 'refs' / 'main').exists(): replica.build_in_cache(cache, device='cuda', extras=False)" "$1"
}

case "${1:-}" in
fetch)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
    rm -rf .whl && mkdir -p .whl
    .venv/bin/python -m pip freeze --exclude-editable | grep '==' \
        | awk -F'==' '{n = tolower($1); gsub("_", "-", n); print n "==" $2}' \
        | grep -Ev "^($SKIP)==" > .whl/wanted.txt
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d .whl -r .whl/wanted.txt
    for big in .whl/ray-*.whl; do  # over a call's carry limit: in parts of 30 MB, joined by `room`
        [ -e "$big" ] || continue
        basename "$big" > .whl/ray.name && split -b 30M "$big" .whl/ray.part- && rm "$big"
    done
    echo "$(ls .whl/*.whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/ (a device call carries at most 64 MiB)"
    ;;
room)
    shift
    if [ -e .whl/ray.name ]; then cat .whl/ray.part-* > ".whl/$(cat .whl/ray.name)"; fi
    replica_in_cache "${ROOM_EXERCISE:-0}"
    HF_HUB_CACHE=/tmp/rs/gpu HF_HUB_OFFLINE=1 python3 -m benchmarks.room --source kandinsky-2-2 --no-per-kernel \
        --visitors 1 8 32 --dry-run "$@" 2>&1 | tee "$OUT/room.md"
    ;;
finetune)
    shift
    replica_in_cache "${FINETUNE_EXERCISE:-0}"
    exercise=""; [ "${FINETUNE_EXERCISE:-0}" = 1 ] && exercise="--exercise"
    HF_HUB_CACHE=/tmp/rs/gpu HF_HUB_OFFLINE=1 python3 -m benchmarks.finetune_gpu --out "$OUT" $exercise "$@" 2>&1 | tee "$OUT/finetune_gpu.log"
    ;;
run)
    shift
    jobs="${1:?which jobs: table,t4,samplers,levers,notebooks}"
    shift
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1  # the kit from this checkout, for the notebooks' kernels too
    mkdir -p "${OUT:?OUT: where the device run collects what comes back}"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt"
    python3 -m benchmarks.real_scale --part gpu --jobs "$jobs" --root /tmp/replica "$@" 2>&1 | tee "$OUT/log.txt"
    cp /tmp/replica/gpu.json "$OUT/gpu.json"  # this loan's figures merged into earlier loans' (real_scale.merged)
    ;;
*)
    sed -n '2,24p' "$0"
    exit 2
    ;;
esac
