#!/usr/bin/env bash
# Lays out PACK (default .gpu/, ignored by git) with everything bench/gpu_check.sh needs on the
# GPU machine, which has python3 + torch but no Rust and no network, and accepts at most
# LIMIT_MIB (64 MiB) of carried files:
#
#   PACK/sipl or PACK/sipl.xz   the release binary, stripped; compressed with xz when the pack
#                               would otherwise exceed the limit (gpu_check.sh unpacks it)
#   PACK/bench/, PACK/configs/  the scripts and the training configs
#   PACK/data/NAME.tar.xz       Tiny ImageNet val and test from DATA (58 MB of tars; xz
#                               halves them: 64² JPEGs repeat their headers and tables)
#   PACK/reference/             only with REF=DIR: the files of the authors' checkout that
#                               bench/reference_loader.py imports (never committed)
#   PACK/VERSION                the commit the pack was made from
#
# The limit holds for everything that travels: the pack plus this checkout's tracked and
# untracked-but-not-ignored files. Prints both sizes; exits non-zero when their sum exceeds
# the limit. Run by `make gpu-pack`
# (which builds the binary first); the environment names the inputs:
#   SIPL (target/release/sipl)  DATA (../shared/data)  PACK (.gpu)  REF  LIMIT_MIB (64)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIPL=${SIPL:-$ROOT/target/release/sipl}
DATA=${DATA:-$ROOT/../shared/data}
PACK=${PACK:-$ROOT/.gpu}
REF=${REF:-}
LIMIT_MIB=${LIMIT_MIB:-64}
SETS="tiny-imagenet-200-val tiny-imagenet-200-test"
PY=${PYTHON:-python3}

die() { echo "gpu-pack: $*" >&2; exit 1; }
[ -x "$SIPL" ] || die "$SIPL: no binary (run make build)"
for s in $SETS; do [ -f "$DATA/$s.tar" ] || die "$DATA/$s.tar: missing (DATA names the folder of the tars)"; done
[ -z "$REF" ] || [ -f "$REF/src/dataset.py" ] || die "REF=$REF: no src/dataset.py (REF is the authors' checkout)"

mkdir -p "$PACK/data"
rm -rf "$PACK/bench" "$PACK/configs" "$PACK/reference" "$PACK/sipl" "$PACK/sipl.xz"
strip -o "$PACK/sipl" "$SIPL"
cp -r "$ROOT/bench" "$ROOT/configs" "$PACK/"
find "$PACK/bench" -name __pycache__ -prune -exec rm -rf {} +
git -C "$ROOT" describe --always --dirty > "$PACK/VERSION" 2>/dev/null || echo unknown > "$PACK/VERSION"

# The data, compressed once (kept between packs while the source tar is unchanged).
for s in $SETS; do
  out="$PACK/data/$s.tar.xz"
  if [ ! -f "$out" ] || [ "$DATA/$s.tar" -nt "$out" ]; then
    echo "compressing $s.tar"
    xz -T2 -6 -c "$DATA/$s.tar" > "$out.tmp" && mv "$out.tmp" "$out"
  fi
done
# Nothing else in data/ (a pack made with other settings may have left files).
find "$PACK/data" -type f ! -name '*.tar.xz' -delete
for f in "$PACK"/data/*.tar.xz; do
  case " $SETS " in *" $(basename "$f" .tar.xz) "*) ;; *) rm -f "$f" ;; esac
done

if [ -n "$REF" ]; then
  files=$("$PY" "$ROOT/bench/reference_files.py" "$REF")
  for f in $files; do
    mkdir -p "$PACK/reference/$(dirname "$f")"
    cp "$REF/$f" "$PACK/reference/$f"
  done
  echo "reference: $(echo $files) from $REF"
else
  echo "reference: none (REF=DIR, the authors' checkout, enables step (e))"
fi

# Bytes of the regular files under the pack, and of the checkout's files that travel with it.
pack_bytes() { find "$PACK" -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }'; }
tree_bytes=$(cd "$ROOT" && git ls-files -z -co --exclude-standard 2> /dev/null |
  xargs -0 -r stat -c %s 2> /dev/null | awk '{ t += $1 } END { print t + 0 }')
limit=$((LIMIT_MIB * 1024 * 1024))
if [ $(($(pack_bytes) + tree_bytes)) -gt "$limit" ]; then
  echo "compressing the binary ($(stat -c %s "$PACK/sipl") bytes stripped)"
  xz -T2 -6 "$PACK/sipl"
fi
pack=$(pack_bytes)
total=$((pack + tree_bytes))
echo "gpu-pack: $PACK"
(cd "$PACK" && find . -type f | sort | xargs stat -c '  %12s  %n')
mib() { awk -v b="$1" 'BEGIN { printf "%d bytes = %.1f MiB", b, b / 1048576 }'; }
echo "gpu-pack: pack $(mib "$pack"); the checkout's files that travel with it $(mib "$tree_bytes")"
echo "gpu-pack: total $(mib "$total") (limit $LIMIT_MIB MiB)"
[ "$total" -le "$limit" ] || die "the pack and the checkout are over the $LIMIT_MIB MiB limit"
