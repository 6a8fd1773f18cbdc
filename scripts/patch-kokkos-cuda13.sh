#!/usr/bin/env bash
# Makes Kokkos 3.4.1 (from Debian's trilinos source) build with CUDA 13's nvcc. Three fixes:
#  0. bin/nvcc_wrapper defaults to sm_35, which CUDA 13 rejects: default to $NVCC_WRAPPER_DEFAULT_ARCH
#     or sm_80 (the architecture flags Kokkos adds later still win).
#  1. Kokkos_Cuda_Half.hpp, "CUDA 11.1 versions": cast_from_half bodies pass half_t where the CUDA
#     intrinsics take __half (no implicit conversion any more), and one calls __half2double, which
#     CUDA does not have.
#  2. Kokkos_CudaSpace.cpp: cudaMemPrefetchAsync takes a cudaMemLocation and flags since CUDA 13.
#  3. Kokkos_Cuda_Instance.cpp refuses to start when the device's major compute capability differs from
#     the compiled one, although CUDA JIT-compiles the embedded PTX for newer devices (Kokkos 3.4 has no
#     Hopper arch flag, so sm_80 + PTX is how it runs on H100/H200): allow compiled <= device.
# Usage: scripts/patch-kokkos-cuda13.sh <path to packages/kokkos>. Idempotent.
set -euo pipefail
src=${1:?usage: patch-kokkos-cuda13.sh <kokkos source dir>}
half=$src/core/src/Cuda/Kokkos_Cuda_Half.hpp
space=$src/core/src/Cuda/Kokkos_CudaSpace.cpp
[ -f "$half" ] && [ -f "$space" ] || { echo "not a Kokkos source tree: $src" >&2; exit 1; }

wrapper=$src/bin/nvcc_wrapper
if ! grep -q "dcsldm-cuda13" "$wrapper"; then
  sed -i 's/^default_arch="sm_35"$/default_arch="${NVCC_WRAPPER_DEFAULT_ARCH:-sm_80}"  # dcsldm-cuda13/' "$wrapper"
fi
if ! grep -q "dcsldm-cuda13" "$half"; then
  start=$(grep -n "CUDA 11.1 versions follow" "$half" | cut -d: -f1)
  # From that line on: __halfX(val) -> __halfX(half_t::impl_type(val)); __half2double -> via float.
  sed -i "${start},\$ { s/return __half2double(val);/return static_cast<T>(__half2float(half_t::impl_type(val)));/; s/return \(__half2[a-z_]*\)(val);/return \1(half_t::impl_type(val));/ }" "$half"
  sed -i "${start}a // dcsldm-cuda13: casts to __half made explicit" "$half"
fi
if ! grep -q "dcsldm-cuda13" "$space"; then
  python3 - "$space" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = """    CUDA_SAFE_CALL(cudaMemPrefetchAsync(ptr, bytes, space.cuda_device(),
                                        space.cuda_stream()));"""
new = """#if CUDA_VERSION >= 13000  // dcsldm-cuda13: location + flags API
    cudaMemLocation loc;
    loc.type = cudaMemLocationTypeDevice;
    loc.id = space.cuda_device();
    CUDA_SAFE_CALL(cudaMemPrefetchAsync(ptr, bytes, loc, 0, space.cuda_stream()));
#else
    CUDA_SAFE_CALL(cudaMemPrefetchAsync(ptr, bytes, space.cuda_device(),
                                        space.cuda_stream()));
#endif"""
assert old in s, "prefetch call not found"
open(p, "w").write(s.replace(old, new))
PY
fi
inst=$src/core/src/Cuda/Kokkos_Cuda_Instance.cpp
if ! grep -q "dcsldm-cuda13" "$inst"; then
  python3 - "$inst" <<'PY'
import sys
p = sys.argv[1]
s = open(p).read()
old = "if (compiled_major != cudaProp.major || compiled_minor > cudaProp.minor) {"
new = ("if (compiled_major > cudaProp.major ||  // dcsldm-cuda13: PTX JIT runs on newer devices\n"
       "        (compiled_major == cudaProp.major && compiled_minor > cudaProp.minor)) {")
assert old in s, "arch check not found"
open(p, "w").write(s.replace(old, new))
PY
fi
echo "patched $src for CUDA 13"
