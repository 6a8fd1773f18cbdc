// dcsldm/nn.hpp: umbrella header for dcsldm/nn/.
#pragma once

#include <dcsldm/nn/activations.hpp>
#include <dcsldm/nn/adaln.hpp>
#include <dcsldm/nn/attention.hpp>
#include <dcsldm/nn/attention_mask.hpp>
#include <dcsldm/nn/avg_pool.hpp>
#include <dcsldm/nn/conv2d.hpp>
#include <dcsldm/nn/cross_entropy.hpp>
#include <dcsldm/nn/fourier_features.hpp>
#include <dcsldm/nn/label_embedding.hpp>
#include <dcsldm/nn/layer_norm.hpp>
#include <dcsldm/nn/linear.hpp>
#include <dcsldm/nn/loss.hpp>
#include <dcsldm/nn/mlp.hpp>
#include <dcsldm/nn/rms_norm.hpp>
#include <dcsldm/nn/softmax.hpp>
#include <dcsldm/nn/timestep_embedding.hpp>
