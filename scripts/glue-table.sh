#!/usr/bin/env bash
# Reproduces the GLUE table in docs/training.md: every method on SST-2 and RTE with the stories260K FM and the
# MiniLM encoder (all-MiniLM-L6-v2 on ONNX Runtime), m = 10, r = 4, H = 256, AdamW lr 1e-3, constant schedule with 6 % warmup, batch 8, seed 0.
#   scripts/glue-table.sh [out-dir] [methods...]      (default: runs/glue, all five methods)
# Each run is one `lopa train` command (printed before it runs); the table is printed at the end from training.json.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/glue}"; shift || true
methods=("$@"); [ ${#methods[@]} -eq 0 ] && methods=(prompt_tuning idpg lopa_add lopa lora)
shared="${LOPA_SHARED:-$(cd .. && pwd)/shared}"
dotnet build src/LoPAProxy.Cli -c Release -nologo -v quiet >/dev/null
lopa() { dotnet src/LoPAProxy.Cli/bin/Release/net10.0/lopa.dll "$@"; }
declare -A train_args=( [SST-2]="--limit 8000 --epochs 1" [RTE]="--epochs 1" )
for task in SST-2 RTE; do
  for method in "${methods[@]}"; do
    dir="$out/$task/$method"
    args=(train --base "$shared/models/stories260K/stories260K.bin" --encoder minilm --data "$shared/data/glue/$task/train.tsv"
          --eval "$shared/data/glue/$task/dev.tsv" --method "$method" --m 10 --r 4 --hidden 256 ${train_args[$task]}
          --batch-size 8 --lr 1e-3 --warmup 0.06 --seed 0 --out "$dir")
    echo "+ lopa ${args[*]}" >&2
    [ -f "$dir/training.json" ] || lopa "${args[@]}"
  done
done
python3 - "$out" "${methods[@]}" <<'PY'
import json, sys, os
out, methods = sys.argv[1], sys.argv[2:]
print("| method | trainable params | SST-2 dev acc (872) | SST-2 s/epoch | RTE dev acc (277) | RTE s/epoch |")
print("|---|---:|---:|---:|---:|---:|")
for m in methods:
    row = [m]
    for task in ("SST-2", "RTE"):
        j = json.load(open(os.path.join(out, task, m, "training.json")))
        if task == "SST-2": row.append(f"{j['trainable_parameters']:,}")
        row += [f"{100 * j['eval'][-1]['score']:.2f}", f"{sum(j['epoch_seconds']) / len(j['epoch_seconds']):.0f}"]
    print("| " + " | ".join(row) + " |")
PY
