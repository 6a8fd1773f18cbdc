# Included from tests/CMakeLists.txt: registers the install/consumer tests (not in device builds).
#   install_find_package   cmake --install this build tree, find_package(dcsldm) from the prefix
#   install_subdirectory   add_subdirectory(<source tree>)
#   install_debian_kokkos  find_package(dcsldm) against Debian's binary Serial Kokkos
#                          (libtrilinos-kokkos-dev; registered when it is installed)
if(DCSLDM_DEVICE_COMPILE_ONLY)
  return()
endif()
set(_dcsldm_consumer_common
  -DDCSLDM_SOURCE_DIR=${PROJECT_SOURCE_DIR} -DDCSLDM_BUILD_DIR=${PROJECT_BINARY_DIR}
  -DGENERATOR=${CMAKE_GENERATOR} -DCXX_COMPILER=${CMAKE_CXX_COMPILER} -DBUILD_TYPE=Release)
set(_dcsldm_kokkos_arg "")
if(Kokkos_DIR)
  set(_dcsldm_kokkos_arg -DKOKKOS_DIR=${Kokkos_DIR})
endif()
foreach(_mode IN ITEMS find_package subdirectory)
  add_test(NAME install_${_mode}
    COMMAND ${CMAKE_COMMAND} -DMODE=${_mode} ${_dcsldm_consumer_common} ${_dcsldm_kokkos_arg}
            -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install_${_mode}
            -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
endforeach()

set(_dcsldm_debian_kokkos /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/Kokkos)
if(CMAKE_LIBRARY_ARCHITECTURE AND EXISTS ${_dcsldm_debian_kokkos}/KokkosConfig.cmake
   AND NOT "${Kokkos_DIR}" STREQUAL "${_dcsldm_debian_kokkos}")
  add_test(NAME install_debian_kokkos
    COMMAND ${CMAKE_COMMAND} -DMODE=find_package ${_dcsldm_consumer_common}
            -DKOKKOS_DIR=${_dcsldm_debian_kokkos}
            -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/install_debian_kokkos
            -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
endif()
# The consumers compile Kokkos code: do not run them next to each other on small machines.
set_property(TEST install_find_package install_subdirectory APPEND PROPERTY RUN_SERIAL TRUE)
if(TEST install_debian_kokkos)
  set_property(TEST install_debian_kokkos APPEND PROPERTY RUN_SERIAL TRUE)
endif()
