"""Goldens for dcsldm/linalg and nn/linear: gemm in all transposes, batched gemm, linear with/without bias."""
import torch

from common import generator, rand, write_safetensors


def gemm_goldens():
    g = generator(1)
    m, n, k, b = 7, 5, 9, 3
    t = {}
    for ta in "NT":
        for tb in "NT":
            a = rand(*((m, k) if ta == "N" else (k, m)), gen=g)
            bb = rand(*((k, n) if tb == "N" else (n, k)), gen=g)
            c = rand(m, n, gen=g)
            opa = a if ta == "N" else a.t()
            opb = bb if tb == "N" else bb.t()
            t[f"a_{ta}{tb}"], t[f"b_{ta}{tb}"], t[f"c_{ta}{tb}"] = a, bb, c
            t[f"out_{ta}{tb}"] = 0.75 * opa @ opb + 0.5 * c
    a3 = rand(b, k, m, gen=g)  # batched, A transposed
    b3 = rand(b, k, n, gen=g)
    t["a3"], t["b3"] = a3, b3
    t["out3"] = torch.bmm(a3.transpose(1, 2), b3)
    write_safetensors("gemm", t, {"alpha": 0.75, "beta": 0.5})


def linear_goldens():
    g = generator(2)
    for name, bias in (("linear", True), ("linear_nobias", False)):
        m, fin, fout = 11, 6, 5
        x = rand(m, fin, gen=g)
        lin = torch.nn.Linear(fin, fout, bias=bias).double()
        with torch.no_grad():
            lin.weight.copy_(rand(fout, fin, gen=g))
            if bias:
                lin.bias.copy_(rand(fout, gen=g))
        y = lin(x)
        dy = rand(m, fout, gen=g).detach()
        y.backward(dy)
        t = {"x": x, "weight": lin.weight, "y": y, "dy": dy, "dx": x.grad, "dweight": lin.weight.grad}
        if bias:
            t["bias"], t["dbias"] = lin.bias, lin.bias.grad
        write_safetensors(name, t)


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    gemm_goldens()
    linear_goldens()
