# Debian's libtrilinos-kokkos-dev exports Kokkos::kokkos with the non-existent include directory
# /usr/lib/include; its headers are in ${Kokkos_INCLUDE_DIRS} (/usr/include/trilinos). Point the target
# there when (and only when) its own directory is missing. Harmless on upstream installs.
if(TARGET Kokkos::kokkos AND DEFINED Kokkos_INCLUDE_DIRS)
  get_target_property(_dcsldm_kk_inc Kokkos::kokkos INTERFACE_INCLUDE_DIRECTORIES)
  set(_dcsldm_kk_missing OFF)
  foreach(_d IN LISTS _dcsldm_kk_inc)
    if(NOT _d MATCHES "^\\$<" AND NOT EXISTS "${_d}")
      set(_dcsldm_kk_missing ON)
    endif()
  endforeach()
  if(_dcsldm_kk_missing)
    get_target_property(_dcsldm_kk_imported Kokkos::kokkos IMPORTED)
    set_target_properties(Kokkos::kokkos PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${Kokkos_INCLUDE_DIRS}")
    message(STATUS "dcsldm: Kokkos::kokkos include directory fixed to ${Kokkos_INCLUDE_DIRS}")
  endif()
endif()
