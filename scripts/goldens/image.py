"""Goldens for dcsldm/image/resize.hpp (PyTorch F.interpolate) and dcsldm/metrics/image_metrics.hpp
(scikit-image PSNR / SSIM).

Images are stored (H, W, C) like the library's; inputs are float32-representable, results float64.
resize.safetensors: for each case <name>: "<name>.x" (H, W, C) and "<name>.y" (OH, OW, C), metadata
"<name>" = mode. F.interpolate runs on (1, C, H, W) with align_corners=False (bilinear/bicubic) and no
antialias; mode='area' only at integer ratios (it is adaptive_avg_pool2d, exact only there).
image_metrics.safetensors: for each case <name>: "<name>.a", "<name>.b" (H, W, C), "<name>.psnr" and
"<name>.ssim" (shape (1,)) from skimage.metrics with data_range=1, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False (channel_axis=-1 for colour). Needs Debian python3-skimage.
"""
import numpy as np
import torch
import torch.nn.functional as F

from common import generator, write_safetensors


def rand_img(h, w, c, gen):
    return torch.rand(h, w, c, generator=gen, dtype=torch.float32).double()


def resize_goldens():
    g = generator(11)
    cases = [  # name, (H, W, C), (OH, OW), mode
        ("bicubic_up", (5, 7, 3), (11, 13), "bicubic"),
        ("bicubic_down", (12, 16, 1), (5, 7), "bicubic"),
        ("bicubic_tiny", (1, 2, 1), (3, 5), "bicubic"),
        ("bilinear_up", (5, 7, 3), (11, 13), "bilinear"),
        ("bilinear_down", (12, 16, 1), (5, 7), "bilinear"),
        ("area_int", (12, 16, 3), (4, 8), "area"),
        ("area_int2", (9, 9, 1), (1, 3), "area"),
        ("area_same", (5, 7, 1), (5, 7), "area"),
    ]
    t, meta = {}, {}
    for name, (h, w, c), (oh, ow), mode in cases:
        x = rand_img(h, w, c, g)
        xin = x.permute(2, 0, 1).unsqueeze(0)
        kw = {} if mode == "area" else {"align_corners": False}
        y = F.interpolate(xin, size=(oh, ow), mode=mode, **kw)[0].permute(1, 2, 0)
        t[name + ".x"], t[name + ".y"] = x, y
        meta[name] = mode
    write_safetensors("resize", t, meta)


def metrics_goldens():
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    rng = np.random.default_rng(5)

    def f32(a):
        return np.clip(a, 0, 1).astype(np.float32).astype(np.float64)

    def smooth(h, w, c):
        yy, xx = np.mgrid[0:h, 0:w]
        base = 0.5 + 0.4 * np.sin(xx / 3.0 + 0.5)[..., None] * np.cos(yy / 4.0)[..., None]
        return base + 0.1 * rng.random((h, w, c))

    cases = {
        "grey_min": (11, 11, 1, 0.1),
        "grey": (20, 24, 1, 0.05),
        "rgb": (13, 16, 3, 0.2),
    }
    t = {}
    for name, (h, w, c, noise) in cases.items():
        a = f32(smooth(h, w, c))
        b = f32(a + noise * rng.standard_normal((h, w, c)))
        p = peak_signal_noise_ratio(a, b, data_range=1.0)
        kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)
        if c == 1:
            s = structural_similarity(a[..., 0], b[..., 0], **kw)
        else:
            s = structural_similarity(a, b, channel_axis=-1, **kw)
        t[name + ".a"], t[name + ".b"] = torch.from_numpy(a), torch.from_numpy(b)
        t[name + ".psnr"] = torch.tensor([p], dtype=torch.float64)
        t[name + ".ssim"] = torch.tensor([s], dtype=torch.float64)
        print(f"  {name}: psnr {p:.6f} ssim {s:.6f}")
    write_safetensors("image_metrics", t)


if __name__ == "__main__":
    resize_goldens()
    metrics_goldens()
