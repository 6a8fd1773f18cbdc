// dcsldm/optim.hpp: umbrella header for dcsldm/optim/.
#pragma once

#include <dcsldm/optim/adamw.hpp>
#include <dcsldm/optim/clip_grad.hpp>
#include <dcsldm/optim/ema.hpp>
#include <dcsldm/optim/lr_schedule.hpp>
#include <dcsldm/optim/param_arena.hpp>
