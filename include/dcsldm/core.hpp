// dcsldm/core.hpp: umbrella header for dcsldm/core/.
#pragma once

#include <dcsldm/core/compat.hpp>
#include <dcsldm/core/error.hpp>
#include <dcsldm/core/rng.hpp>
#include <dcsldm/core/types.hpp>
