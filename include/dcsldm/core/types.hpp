// dcsldm/core/types.hpp: View aliases, the accumulation-type trait and small shared enums.
#pragma once

#include <dcsldm/core/compat.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace dcsldm {

/// Accumulation type for a storage scalar: float for float and half types, double for double.
template <class T>
struct accum {
  using type = T;
};
#if defined(KOKKOS_HALF_T_IS_FLOAT) && !KOKKOS_HALF_T_IS_FLOAT
template <>
struct accum<Kokkos::Experimental::half_t> {
  using type = float;
};
#endif
template <class T>
using accum_t = typename accum<T>::type;

/// Rank-1..4 LayoutRight Views in a memory space: the tensor types of the library.
template <class T, class MemSpace>
using View1 = Kokkos::View<T*, Kokkos::LayoutRight, MemSpace>;
template <class T, class MemSpace>
using View2 = Kokkos::View<T**, Kokkos::LayoutRight, MemSpace>;
template <class T, class MemSpace>
using View3 = Kokkos::View<T***, Kokkos::LayoutRight, MemSpace>;
template <class T, class MemSpace>
using View4 = Kokkos::View<T****, Kokkos::LayoutRight, MemSpace>;

/// Element type of a View without const.
template <class V>
using value_t = std::remove_const_t<typename V::value_type>;

}  // namespace dcsldm
