#!/usr/bin/env bash
# The GLUE table in docs/training.md: five methods × SST-2, RTE, MRPC × seeds, stories260K frozen, the MiniLM encoder
# (all-MiniLM-L6-v2 on ONNX Runtime), m = 10, r = 4, H = 256, AdamW lr 1e-3, constant schedule with 6 % warm-up,
# batch 8, one libtorch thread per run (OMP_WAIT_POLICY=PASSIVE), up to 5 epochs, stopped when the dev score has not
# improved for one epoch (--patience 1). Scored by the label word's deciding piece (docs/training.md).
#   scripts/glue-table.sh [out-dir] [task] [method] [seeds]     (defaults: runs/glue, all tasks, all methods, "0 1 2")
# One row alone: scripts/glue-table.sh runs/glue SST-2 lopa. LOPA_JOBS=N runs N trainings at once (default 2).
# Each run is one `lopa train` command, printed before it runs and skipped when its training.json exists; the table
# (mean ± sd over seeds of the best dev score, epochs, s/epoch) is printed at the end from the training.json files.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/glue}"
tasks="${2:-SST-2 RTE MRPC}"
methods="${3:-prompt_tuning idpg lopa_add lopa lora}"
seeds="${4:-0 1 2}"
shared="${LOPA_SHARED:-$(cd .. && pwd)/shared}"
./lopa --help >/dev/null   # builds once, before the parallel runs
runs=()
for task in $tasks; do
  limit=""
  [ "$task" = "SST-2" ] && limit="--limit 8000"
  for method in $methods; do
    for seed in $seeds; do
      dir="$out/$task/$method/seed$seed"
      [ -f "$dir/training.json" ] && continue
      runs+=("train --base $shared/models/stories260K/stories260K.bin --encoder minilm \
--data $shared/data/glue/$task/train.tsv --eval $shared/data/glue/$task/dev.tsv $limit --method $method --m 10 --r 4 \
--hidden 256 --epochs 5 --patience 1 --batch-size 8 --lr 1e-3 --warmup 0.06 --seed $seed --threads 1 --out $dir")
    done
  done
done
for run in "${runs[@]}"; do echo "$run"; done | xargs -P "${LOPA_JOBS:-2}" -I{} sh -c 'echo "+ lopa {}" >&2; ./lopa {} > /dev/null 2>&1 || echo "FAILED: lopa {}" >&2'
python3 - "$out" "$tasks" "$methods" <<'PY'
import json, os, statistics, sys
out, tasks, methods = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
def runs(task, method):
    base = os.path.join(out, task, method)
    if not os.path.isdir(base): return []
    return [json.load(open(os.path.join(base, d, "training.json"))) for d in sorted(os.listdir(base))
            if os.path.exists(os.path.join(base, d, "training.json"))]
print("| method | trainable params | " + " | ".join(f"{t} dev acc (seeds) | {t} epochs, s/epoch" for t in tasks) + " |")
print("|---|---:|" + "---:|---:|" * len(tasks))
for m in methods:
    row, params = [m], ""
    for t in tasks:
        rs = runs(t, m)
        if not rs: row += ["—", "—"]; continue
        params = f"{rs[0]['trainable_parameters']:,}"
        best = [100 * max(e["score"] for e in r["eval"]) for r in rs]
        sd = statistics.stdev(best) if len(best) > 1 else 0.0
        epochs = statistics.mean(len(r["eval"]) for r in rs)
        sec = statistics.mean(statistics.mean(r["epoch_seconds"]) for r in rs)
        row += [f"{statistics.mean(best):.2f} ± {sd:.2f} ({len(best)})", f"{epochs:.1f}, {sec:.0f}"]
    print("| " + " | ".join([row[0], params] + row[1:]) + " |")
PY
