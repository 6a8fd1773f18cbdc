"""Goldens for dcsldm/linalg/sym_eigen.hpp and dcsldm/metrics/frechet.hpp (numpy / scipy, float64).

Run with /usr/bin/python3 (numpy, scipy >= 1.10, torch only for common.write_safetensors).

generation_metrics.safetensors:
  "eig.a" (n, n) symmetric, float32-representable; "eig.values" (n,) numpy.linalg.eigvalsh.
  For each FD case <name>: "<name>.xa" (na, dim), "<name>.xb" (nb, dim) float32-representable features;
  "<name>.mean_a" (dim,), "<name>.cov_a" (dim, dim) from numpy.mean / numpy.cov (ddof 1);
  "<name>.fd" (1,) = |mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr(scipy.linalg.sqrtm(S_a S_b)) as in
  pytorch-fid's calculate_frechet_distance (real part of sqrtm).
"""
import numpy as np
import scipy.linalg
import torch

from common import write_safetensors


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def frechet(xa, xb):
    mu_a, mu_b = xa.mean(axis=0), xb.mean(axis=0)
    sa, sb = np.cov(xa, rowvar=False), np.cov(xb, rowvar=False)
    covmean = scipy.linalg.sqrtm(sa @ sb)
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    d = mu_a - mu_b
    fd = d @ d + np.trace(sa) + np.trace(sb) - 2 * np.trace(covmean)
    # Cross-check through symmetric eigen-decompositions (the library's route).
    w, v = np.linalg.eigh(sa)
    r = (v * np.sqrt(np.maximum(w, 0))) @ v.T
    alt = d @ d + np.trace(sa) + np.trace(sb) - 2 * np.sqrt(np.maximum(np.linalg.eigvalsh(r @ sb @ r), 0)).sum()
    return mu_a, sa, fd, alt


def main():
    rng = np.random.default_rng(2024)
    t = {}

    n = 10
    m = f32(rng.uniform(-1, 1, (n, n)))
    a = np.triu(m) + np.triu(m, 1).T  # exactly symmetric, float32 values
    t["eig.a"] = torch.from_numpy(a)
    t["eig.values"] = torch.from_numpy(np.linalg.eigvalsh(a))

    cases = {  # name: (na, nb, dim)
        "fd_small": (40, 30, 6),
        "fd_mid": (120, 100, 24),
    }
    for name, (na, nb, dim) in cases.items():
        mix_a = rng.normal(size=(dim, dim)) / np.sqrt(dim)
        mix_b = mix_a + 0.3 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
        xa = f32(rng.normal(size=(na, dim)) @ mix_a + 0.5)
        xb = f32(rng.uniform(-1.5, 1.5, size=(nb, dim)) @ mix_b + rng.normal(0.3, 0.2, size=dim))
        mu_a, sa, fd, alt = frechet(xa, xb)
        t[name + ".xa"], t[name + ".xb"] = torch.from_numpy(xa), torch.from_numpy(xb)
        t[name + ".mean_a"], t[name + ".cov_a"] = torch.from_numpy(mu_a), torch.from_numpy(sa)
        t[name + ".fd"] = torch.tensor([fd], dtype=torch.float64)
        print(f"  {name}: fd (scipy sqrtm) {fd:.15g}, via eigh {alt:.15g}, rel diff {abs(fd - alt) / fd:.2e}")
    write_safetensors("generation_metrics", t)


if __name__ == "__main__":
    main()
