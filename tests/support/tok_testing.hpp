// Shared test helper: the smallest DCS-Tok configuration the tokenizer, pipeline and evaluation tests build
// (k = 2, two levels of 1 and 2 tokens, widths of 8 / 16), randomly initialised by each test.
#pragma once

#include <dcsldm/tok/config.hpp>

namespace dcsldm::test {

inline tok::TokenizerConfig tiny_tokenizer_config(int channels) {
  tok::TokenizerConfig c;
  c.channels = channels;
  c.k = 2;
  c.queries = 2;
  c.pixel_width = 8;
  c.pixel_heads = 2;
  c.freqs = 2;
  c.pos_freqs = 2;
  c.width = 16;
  c.heads = 2;
  c.enc_layers = 1;
  c.dec_layers = 1;
  c.mlp_ratio = 2;
  c.head_hidden = 8;
  c.level_sizes = {1, 2};
  c.latent_channels = 3;
  return c;
}

}  // namespace dcsldm::test
