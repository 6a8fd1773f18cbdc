// dcsldm/dcsldm.hpp: the whole library. Include single headers (dcsldm/nn/linear.hpp) or area
// umbrellas (dcsldm/nn.hpp) for faster builds.
#pragma once

#include <dcsldm/core.hpp>
#include <dcsldm/io.hpp>
#include <dcsldm/linalg.hpp>
#include <dcsldm/nn.hpp>
#include <dcsldm/optim.hpp>
