#!/usr/bin/env bash
# Installs everything dcsldm needs on a fresh Debian 12 machine, from Debian's archive only.
# Idempotent: a second run only checks. Run as root.
#
#   scripts/install-deps.sh [--hip] [--torch]
#
#   (default)  compilers, CMake, OpenBLAS, Catch2, xtensor, nlohmann-json, Google Benchmark, FreeType,
#              libpng, data packages, Debian's binary Serial Kokkos (libtrilinos-kokkos-dev, ~5 MB: the
#              install test checks that dcsldm also works with it), and Kokkos 3.4.1 (Serial+OpenMP)
#              built from Debian's trilinos source into $DCSLDM_DEPS/kokkos-openmp.
#   --hip      also hipcc + HIP runtime headers and a HIP-enabled Kokkos 3.4.1 in $DCSLDM_DEPS/kokkos-hip
#              (used for the compile-only device gate; nothing runs on a GPU here).
#   --torch    also Debian's python3-torch, python3-skimage and python3-matplotlib (golden tensors, speed
#              comparisons, the plots of scripts/eval_generation.sh and benchmarks/plot_*.py).
#
# DCSLDM_DEPS defaults to /opt/dcsldm-deps.
set -euo pipefail

DEPS=${DCSLDM_DEPS:-/opt/dcsldm-deps}
WITH_HIP=0
WITH_TORCH=0
for a in "$@"; do
  case "$a" in
    --hip) WITH_HIP=1 ;;
    --torch) WITH_TORCH=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown option '$a' (known: --hip --torch)" >&2; exit 2 ;;
  esac
done
JOBS=$(nproc)
log() { printf '[install-deps] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

pkgs=(build-essential cmake ninja-build pkg-config ca-certificates xz-utils
      libopenblas-dev libopenblas-openmp-dev catch2 libxtensor-dev nlohmann-json3-dev libbenchmark-dev
      libfreetype-dev libpng-dev zlib1g-dev dataset-fashion-mnist fonts-dejavu-core fonts-noto-core
      python3 python3-numpy libtrilinos-kokkos-dev)
[ "$WITH_HIP" = 1 ] && pkgs+=(hipcc libamdhip64-dev)
[ "$WITH_TORCH" = 1 ] && pkgs+=(python3-torch python3-skimage python3-matplotlib)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "Debian packages present"
fi

# --- Kokkos 3.4.1 from Debian's trilinos source package ------------------------------------------
SRC_DIR=$DEPS/src
KOKKOS_SRC=$SRC_DIR/Trilinos-trilinos-release-13-2-0/packages/kokkos

fetch_kokkos_source() {
  [ -f "$KOKKOS_SRC/CMakeLists.txt" ] && return 0
  $SUDO mkdir -p "$SRC_DIR"
  # The mirror comes from this machine's own apt configuration (works behind a local mirror too).
  local uri=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1=="deb" && $0 !~ /security/ { for (i=2;i<=NF;i++) if ($i ~ /^(http|https|file):/) {print $i; exit} }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "install-deps.sh: no Debian mirror URI found in /etc/apt" >&2; exit 1; }
  local apt_dir; apt_dir=$(mktemp -d)
  echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri bookworm main" > "$apt_dir/sources.list"
  mkdir -p "$apt_dir/lists/partial"
  local opts=(-oDir::Etc::SourceList="$apt_dir/sources.list" -oDir::Etc::SourceParts=/dev/null
              -oDir::State::Lists="$apt_dir/lists" -q)
  log "downloading trilinos source from $uri"
  apt-get "${opts[@]}" update
  (cd "$apt_dir" && apt-get "${opts[@]}" source --download-only trilinos)
  local tarball; tarball=$(ls "$apt_dir"/trilinos_*.orig.tar.* | head -n 1)
  log "extracting packages/kokkos from $(basename "$tarball")"
  $SUDO tar -C "$SRC_DIR" -xf "$tarball" Trilinos-trilinos-release-13-2-0/packages/kokkos
  rm -rf "$apt_dir"
}

# build_kokkos <prefix> <extra cmake args...>
build_kokkos() {
  local prefix=$1; shift
  if [ -f "$prefix/.dcsldm-stamp" ]; then log "Kokkos at $prefix present"; return 0; fi
  fetch_kokkos_source
  local bdir; bdir=$(mktemp -d)
  log "building Kokkos 3.4.1 into $prefix ($*)"
  cmake -S "$KOKKOS_SRC" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_CXX_STANDARD=17 -DCMAKE_CXX_EXTENSIONS=OFF -DBUILD_SHARED_LIBS=ON \
        -DKokkos_ENABLE_SERIAL=ON -DCMAKE_INSTALL_PREFIX="$prefix" "$@" > "$bdir/configure.log" \
    || { cat "$bdir/configure.log"; exit 1; }
  cmake --build "$bdir" -j "$JOBS" > "$bdir/build.log" || { tail -n 50 "$bdir/build.log"; exit 1; }
  $SUDO cmake --install "$bdir" > /dev/null
  echo "kokkos 3.4.1 $*" | $SUDO tee "$prefix/.dcsldm-stamp" > /dev/null
  rm -rf "$bdir"
}

build_kokkos "$DEPS/kokkos-openmp" -DKokkos_ENABLE_OPENMP=ON
if [ "$WITH_HIP" = 1 ]; then
  build_kokkos "$DEPS/kokkos-hip" -DKokkos_ENABLE_HIP=ON -DKokkos_ARCH_VEGA908=ON \
               -DCMAKE_CXX_COMPILER="$(command -v hipcc)"
fi
log "done: Kokkos_ROOT=$DEPS/kokkos-openmp"
