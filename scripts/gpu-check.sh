#!/usr/bin/env bash
# Builds Kokkos 3.4.1 with CUDA and runs the dcsldm test suite and example on an NVIDIA GPU machine that
# has nvcc, cmake and ninja but no Debian packages. Everything else travels in .devdeps/ (made by
# scripts/gpu-devdeps.sh on the Debian machine): the patched Kokkos source and the header-only test
# dependencies (Catch2, nlohmann-json, xtensor, xtl) with their CMake configs.
#
#   scripts/gpu-check.sh [OUT_DIR]      (OUT_DIR receives the logs; default ./gpu-check-out)
set -uo pipefail
out=${1:-$PWD/gpu-check-out}
mkdir -p "$out"
export PATH=/usr/local/cuda/bin:$PATH
root=$(cd "$(dirname "$0")/.." && pwd)
deps=$root/.devdeps
jobs=$(nproc)
stage() { printf '\n=== %s (%ss)\n' "$*" "$SECONDS"; }

stage "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nvcc --version | tail -n 2; g++ --version | head -n 1; cmake --version | head -n 1; echo "cores: $jobs"

stage "Kokkos 3.4.1 + CUDA (sm_80 code + PTX)"
cmake -S "$deps/kokkos" -B /tmp/kk-build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_STANDARD=17 \
  -DCMAKE_CXX_EXTENSIONS=OFF -DKokkos_ENABLE_SERIAL=ON -DKokkos_ENABLE_CUDA=ON -DKokkos_ENABLE_CUDA_LAMBDA=ON \
  -DKokkos_ARCH_AMPERE80=ON -DCMAKE_CXX_COMPILER="$deps/kokkos/bin/nvcc_wrapper" \
  -DCMAKE_INSTALL_PREFIX=/tmp/kk-cuda > "$out/kokkos-configure.log" 2>&1 || { tail -30 "$out/kokkos-configure.log"; exit 1; }
ninja -C /tmp/kk-build -j "$jobs" install > "$out/kokkos-build.log" 2>&1 || { grep -m 20 -B2 -A8 "error" "$out/kokkos-build.log"; exit 1; }

stage "dcsldm tests + examples with nvcc"
# Kokkos 3.4.1's exported config, written under CMake 4 with CUDA 13, needs three repairs: a two-entry
# include list written with a newline inside one string, CUDA::cuda_driver without a library (no stubs
# were found at build time), and a link to CUDA::cudart_static_deps, which consumers do not define.
driver=""
for c in /usr/local/cuda/lib64/stubs/libcuda.so /usr/local/nvidia/lib64/libcuda.so.1; do
  [ -n "$driver" ] || { [ -e "$c" ] && driver=$c; }
done
echo "libcuda: ${driver:-not found}"
python3 - /tmp/kk-cuda/lib/cmake/Kokkos "$driver" <<'PY'
import glob, re, sys
d, driver = sys.argv[1], sys.argv[2]
for f in glob.glob(d + "/*.cmake"):
    s = o = open(f).read()
    s = re.sub(r'(INTERFACE_INCLUDE_DIRECTORIES ")([^"]*)"', lambda m: m.group(1) + ";".join(m.group(2).split()) + '"', s)
    s = s.replace('INTERFACE_LINK_LIBRARIES "CUDA::cudart_static_deps"\n', "")
    if driver and "CUDA::cuda_driver PROPERTIES\nINTERFACE" in s:
        s = s.replace("CUDA::cuda_driver PROPERTIES\nINTERFACE", 'CUDA::cuda_driver PROPERTIES\nIMPORTED_LOCATION "%s"\nINTERFACE' % driver)
    if s != o:
        open(f, "w").write(s)
        print("repaired", f)
PY
cmake -S "$root" -B /tmp/dcsldm-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release -DKokkos_ROOT=/tmp/kk-cuda \
  -DCMAKE_CXX_COMPILER=/tmp/kk-cuda/bin/nvcc_wrapper -DCMAKE_PREFIX_PATH="$deps/usr" \
  -DDCSLDM_ENABLE_CBLAS=OFF -DDCSLDM_ENABLE_BENCHMARKS=OFF -DDCSLDM_DEVICE_COMPILE_ONLY=ON \
  > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
ninja -C /tmp/dcsldm-cuda -j "$jobs" -k 0 > "$out/build.log" 2>&1
build_rc=$?
# A __host__ function called from device code only warns in nvcc (#20011/#20014) and runs garbage on the
# GPU (PatchGrid::num_patches did): treat it as a build failure.
if grep -q "warning #2001[14]-D" "$out/build.log"; then
  grep -m 10 "warning #2001[14]-D" "$out/build.log"
  echo "host function called from device code (see above)"
  build_rc=1
fi
[ $build_rc = 0 ] || grep -m 30 -A6 "error" "$out/build.log"

stage "run tests on the GPU"
fails=0
for t in /tmp/dcsldm-cuda/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  if OMP_PROC_BIND=false "$t" > "$out/$name.log" 2>&1; then
    echo "PASS $name: $(tail -n 2 "$out/$name.log" | tr '\n' ' ')"
  else
    echo "FAIL $name"; tail -n 40 "$out/$name.log"; fails=$((fails + 1))
  fi
done
if [ -x /tmp/dcsldm-cuda/examples/00_fit_field ]; then
  stage "example 00_fit_field on the GPU"
  /tmp/dcsldm-cuda/examples/00_fit_field --out "$out" 2>&1 | tail -n 6 || fails=$((fails + 1))
fi
stage "done: build rc $build_rc, $fails failing programs"
[ $build_rc = 0 ] && [ $fails = 0 ]
