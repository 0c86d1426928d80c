#!/usr/bin/env bash
# Model server before/after, same session (docs/benchmarks.md). Old: /tmp/before, the hand-written engine
#   (git worktree add /tmp/before ed5a102 && git -C /tmp/before cherry-pick 51014b0; build its CLI and benchmarks);
# new: /work/main (llama.cpp). Both trees built in Release first.
set -u
M=/work/shared/models/stories260K/stories260K.bin
echo "== $(date -u) $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo)"
for round in 1 2; do
echo "-- round $round: old engine, lopa generate --bench (256 tokens from BOS, ignore stops)"
(cd /tmp/before && ./lopa generate --model $M --max-tokens 256 --bench 2>&1 | tail -1)
(cd /tmp/before && ./lopa generate --model $M --max-tokens 256 --bench --streams 8 2>&1 | tail -1)
echo "-- round $round: llama.cpp, lopa generate --bench"
(cd /work/main && ./lopa generate --model $M --max-tokens 256 --bench --threads 1 2>&1 | tail -1)
(cd /work/main && ./lopa generate --model $M --max-tokens 256 --bench --threads 2 2>&1 | tail -1)
(cd /work/main && ./lopa generate --model $M --max-tokens 256 --bench --streams 8 --threads 1 2>&1 | tail -1)
(cd /work/main && ./lopa generate --model $M --max-tokens 256 --bench --streams 8 --threads 2 2>&1 | tail -1)
done
echo "-- HTTP (compare model-server), old"
(cd /tmp/before/bench/LoPAProxy.Benchmarks && dotnet run -c Release --no-build -- compare model-server $M 5 2>&1 | grep -v "^ ")
echo "-- HTTP (compare model-server), llama.cpp"
(cd /work/main/bench/LoPAProxy.Benchmarks && dotnet run -c Release --no-build -- compare model-server $M 5 2>&1 | grep -v "^ ")
echo "== done $(date -u)"
