// dcsldm/image/image.hpp: the host image types of the library's data and evaluation code.
//
// Images are float in [0, 1], (H, W, C) row-major; batches (N, H, W, C). So a batch copies byte for
// byte into a LayoutRight Kokkos View of (B, T, H, W, C) with T = 1, or (N, H, W, C).
// Uses xtensor (header-only, Debian libxtensor-dev).
#pragma once

#include <dcsldm/core/error.hpp>

#include <xtensor/xtensor.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <vector>

namespace dcsldm::image {

/// An image (H, W, C), float, values in [0, 1].
using Image = xt::xtensor<float, 3>;
/// A batch of images (N, H, W, C).
using ImageBatch = xt::xtensor<float, 4>;

/// Stacks images of one shape into a batch (N, H, W, C). Throws naming the first image whose shape
/// differs from the first one's.
inline ImageBatch stack_images(const std::vector<Image>& imgs) {
  const std::size_t N = imgs.size();
  std::array<std::size_t, 4> shape{N, 0, 0, 0};
  if (N > 0) shape = {N, imgs[0].shape()[0], imgs[0].shape()[1], imgs[0].shape()[2]};
  const std::size_t per = shape[1] * shape[2] * shape[3];
  ImageBatch b(shape);
  for (std::size_t n = 0; n < N; ++n) {
    DCSLDM_REQUIRE(imgs[n].shape() == imgs[0].shape(), "stack_images", "image ", n, " is (", imgs[n].shape()[0],
                   ", ", imgs[n].shape()[1], ", ", imgs[n].shape()[2], ") but image 0 is (", shape[1], ", ",
                   shape[2], ", ", shape[3], ")");
    std::copy(imgs[n].data(), imgs[n].data() + per, b.data() + n * per);
  }
  return b;
}

/// Image n of a batch, copied: (H, W, C).
inline Image batch_item(const ImageBatch& b, std::size_t n) {
  DCSLDM_REQUIRE(n < b.shape()[0], "batch_item", "index ", n, " out of range for N = ", b.shape()[0]);
  const std::size_t H = b.shape()[1], W = b.shape()[2], C = b.shape()[3];
  Image img(std::array<std::size_t, 3>{H, W, C});
  std::copy(b.data() + n * H * W * C, b.data() + (n + 1) * H * W * C, img.data());
  return img;
}

}  // namespace dcsldm::image
