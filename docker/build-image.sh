#!/usr/bin/env bash
# Builds the bzzz binary on the host and the image bzzz:<version> + bzzz:latest FROM scratch.
#
#   docker/build-image.sh            release build (what operators deploy)
#   BZZZ_IMAGE_PROFILE=dev docker/build-image.sh   debug build (faster to build, larger)
#   BZZZ_IMAGE_SKIP_BUILD=1 ...      reuse the binary already in the target dir
#
# Prints the image's tags and size. The binary is dynamically linked against glibc; the libraries
# `ldd` lists are copied into the image at the same paths, so no base image is needed.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"

profile="${BZZZ_IMAGE_PROFILE:-release}"
target_dir="${CARGO_TARGET_DIR:-$repo/target}"
case "$profile" in
  release) out="$target_dir/release/bzzz" ;;
  dev) out="$target_dir/debug/bzzz" ;;
  *) echo "BZZZ_IMAGE_PROFILE must be release or dev, not '$profile'" >&2; exit 2 ;;
esac

if [[ "${BZZZ_IMAGE_SKIP_BUILD:-0}" != 1 ]]; then
  echo "== cargo build --profile $profile -p bzzz-node --bin bzzz (target $target_dir)"
  CARGO_TARGET_DIR="$target_dir" cargo build --profile "$profile" -p bzzz-node --bin bzzz
fi
[[ -x "$out" ]] || { echo "no binary at $out (build it, or unset BZZZ_IMAGE_SKIP_BUILD)" >&2; exit 1; }

version="$("$out" --version | awk '{print $2}')"
[[ -n "$version" ]] || { echo "could not read the version from $out --version" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/rootfs/app/config" "$ctx/rootfs/etc" "$ctx/data"
cp "$out" "$ctx/rootfs/app/bzzz"
# Keep the symbol table (readable backtraces), drop the DWARF line tables.
strip --strip-debug "$ctx/rootfs/app/bzzz"
cp docker/config.yaml "$ctx/rootfs/app/config/config.yaml"
printf 'root:x:0:0:root:/:/sbin/nologin\nbzzz:x:10001:10001:bzzz:/app:/sbin/nologin\n' > "$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nbzzz:x:10001:\n' > "$ctx/rootfs/etc/group"
# glibc falls back to these when /etc/nsswitch.conf is absent, but say it explicitly.
printf 'hosts: files dns\n' > "$ctx/rootfs/etc/nsswitch.conf"

# Every shared library the binary needs, and the dynamic loader, at their own paths.
libs=$(ldd "$out" | awk '/=> \//{print $3} /^[[:space:]]*\/.*ld-linux/{print $1}')
for lib in $libs; do
  real="$(readlink -f "$lib")"
  mkdir -p "$ctx/rootfs$(dirname "$lib")"
  cp "$real" "$ctx/rootfs$lib"
done

docker build --quiet -f Dockerfile -t "bzzz:$version" -t bzzz:latest "$ctx" >/dev/null
size=$(docker image inspect bzzz:latest --format '{{.Size}}')
echo "built bzzz:$version and bzzz:latest ($profile): $((size / 1024 / 1024)) MiB ($size bytes)"
echo "libraries: $(echo $libs | tr '\n' ' ')"
