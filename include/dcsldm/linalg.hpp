// dcsldm/linalg.hpp: umbrella header for dcsldm/linalg/.
#pragma once

#include <dcsldm/linalg/gemm.hpp>
