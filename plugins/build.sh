#!/usr/bin/env bash
# Builds every example plugin for wasm32-unknown-unknown (release: size-tuned
# profile in plugins/Cargo.toml) into plugins/target, and copies each to
# plugins/dist/NAME.wasm, ready for fastlb's [plugins] dir.
#
#   plugins/build.sh            # all examples
#   plugins/build.sh canary     # only these
set -euo pipefail
cd "$(dirname "$0")"

target=wasm32-unknown-unknown
rustup target add "$target" >/dev/null 2>&1 || true

if [ "$#" -gt 0 ]; then
  names=("$@")
else
  names=()
  for dir in examples/*/; do names+=("$(basename "$dir")"); done
fi

packages=()
for name in "${names[@]}"; do packages+=(-p "$name"); done
cargo build --release --locked --target "$target" --target-dir target "${packages[@]}"

mkdir -p dist
for name in "${names[@]}"; do
  cp "target/$target/release/${name//-/_}.wasm" "dist/$name.wasm"
  printf '%-20s %8d bytes\n' "dist/$name.wasm" "$(wc -c < "dist/$name.wasm")"
done
