// dcsldm/data/split.hpp: the train/test split selector shared by the data sets.
#pragma once

namespace dcsldm::data {

/// Which part of a data set: the training part, or the held-out part never used in training.
enum class Split { Train, Test };

/// "train" or "test".
inline const char* split_name(Split s) { return s == Split::Train ? "train" : "test"; }

}  // namespace dcsldm::data
