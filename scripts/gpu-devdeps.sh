#!/usr/bin/env bash
# Fills .devdeps/ (git-ignored) with what scripts/gpu-check.sh needs on a GPU machine without Debian
# packages: the Kokkos 3.4.1 source patched for CUDA 13, and the header-only test dependencies with
# their CMake package configs (they locate their headers relative to themselves).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
d=$root/.devdeps
src=${DCSLDM_DEPS:-/opt/dcsldm-deps}/src/Trilinos-trilinos-release-13-2-0/packages/kokkos
[ -d "$src" ] || { echo "run scripts/install-deps.sh first (no Kokkos source at $src)" >&2; exit 1; }
rm -rf "$d"
mkdir -p "$d/usr/include" "$d/usr/lib/cmake" "$d/usr/share/cmake" "$d/usr/lib/x86_64-linux-gnu/cmake"
cp -r "$src" "$d/kokkos"
"$root/scripts/patch-kokkos-cuda13.sh" "$d/kokkos"
cp -r /usr/include/catch2 /usr/include/nlohmann /usr/include/xtensor /usr/include/xtl "$d/usr/include/"
cp -r /usr/lib/cmake/Catch2 "$d/usr/lib/cmake/"
cp /usr/lib/libCatch2WithMain.a "$d/usr/lib/"
cp -r /usr/share/cmake/nlohmann_json /usr/share/cmake/xtl "$d/usr/share/cmake/"
cp -r /usr/lib/x86_64-linux-gnu/cmake/xtensor "$d/usr/lib/x86_64-linux-gnu/cmake/"
grep -qx "/.devdeps/" "$root/.git/info/exclude" 2>/dev/null || echo "/.devdeps/" >> "$root/.git/info/exclude"
du -sh "$d"
