// dcsldm/io.hpp: umbrella header for dcsldm/io/.
#pragma once

#include <dcsldm/io/half.hpp>
#include <dcsldm/io/safetensors.hpp>
