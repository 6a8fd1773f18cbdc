// dcsldm/linalg.hpp: umbrella header for dcsldm/linalg/.
#pragma once

#include <dcsldm/linalg/gemm.hpp>
#include <dcsldm/linalg/sym_eigen.hpp>
