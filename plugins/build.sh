#!/usr/bin/env bash
# Builds plugins for wasm32-unknown-unknown (release: size-tuned profile in
# plugins/Cargo.toml) into plugins/target, and copies each to
# plugins/dist/NAME.wasm, ready for fastlb's [plugins] dir.
#
#   plugins/build.sh                 # all examples (examples/*)
#   plugins/build.sh canary trap     # only these (an example or a bad/ test plugin)
#   plugins/build.sh --all           # the examples and the deliberately bad
#                                    # test plugins (bad/*), as fastlb's tests need
set -euo pipefail
cd "$(dirname "$0")"

target=wasm32-unknown-unknown
rustup target add "$target" >/dev/null 2>&1 || true

names=()
if [ "$#" -eq 1 ] && [ "$1" = "--all" ]; then
  for dir in examples/*/ bad/*/; do names+=("$(basename "$dir")"); done
elif [ "$#" -gt 0 ]; then
  for name in "$@"; do
    if [ "${name#-}" != "$name" ]; then
      echo "build.sh: unknown option $name (only --all, alone)" >&2
      exit 2
    fi
    if [ ! -d "examples/$name" ] && [ ! -d "bad/$name" ]; then
      echo "build.sh: no plugin $name (expected examples/$name or bad/$name)" >&2
      exit 2
    fi
    names+=("$name")
  done
else
  for dir in examples/*/; do names+=("$(basename "$dir")"); done
fi

packages=()
for name in "${names[@]}"; do packages+=(-p "$name"); done
cargo build --release --locked --target "$target" --target-dir target "${packages[@]}"

mkdir -p dist
for name in "${names[@]}"; do
  # Copied to a temp name and renamed: a fastlb watching dist/ never sees half a file.
  cp "target/$target/release/${name//-/_}.wasm" "dist/.$name.wasm.tmp"
  mv -f "dist/.$name.wasm.tmp" "dist/$name.wasm"
  printf '%-28s %8d bytes\n' "dist/$name.wasm" "$(wc -c < "dist/$name.wasm")"
done
