"""Goldens for the classifier's layers and the whole classifier (tests/cls/test_classifier.cpp):
conv2d (3x3, padding 1, channels-last), avg_pool2d(2), cross_entropy (mean), and the conv classifier
(conv-GELU-pool x2, fc-GELU, head) with every parameter gradient. Weights are stored in dcsldm's layout:
conv weights as (Cout, kh*kw*Cin) = torch's (Cout, Cin, kh, kw).permute(0, 2, 3, 1).
Run: /usr/bin/python3 scripts/goldens/classifier.py
"""
import torch
import torch.nn.functional as F

from common import generator, rand, write_safetensors


def nhwc_conv(x, w, b):  # x (B, H, W, C), w (Cout, Cin, 3, 3)
    return F.conv2d(x.permute(0, 3, 1, 2), w, b, padding=1).permute(0, 2, 3, 1)


def ours(w):  # (Cout, Cin, kh, kw) -> (Cout, kh*kw*Cin)
    return w.detach().permute(0, 2, 3, 1).reshape(w.shape[0], -1)


def conv_golden():
    g = generator(11)
    x = rand(2, 5, 6, 3, gen=g)
    w = rand(4, 3, 3, 3, gen=g)
    b = rand(4, gen=g)
    y = nhwc_conv(x, w, b)
    dy = rand(*y.shape, gen=g).detach()
    y.backward(dy)
    write_safetensors("conv2d", {"x": x, "w": ours(w), "b": b, "y": y, "dy": dy, "dx": x.grad,
                                 "dw": ours(w.grad), "db": b.grad})


def pool_golden():
    g = generator(12)
    x = rand(2, 6, 4, 3, gen=g)
    y = F.avg_pool2d(x.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    dy = rand(*y.shape, gen=g).detach()
    y.backward(dy)
    write_safetensors("avg_pool2", {"x": x, "y": y, "dy": dy, "dx": x.grad})


def ce_golden():
    g = generator(13)
    z = rand(5, 7, gen=g, lo=-4, hi=4)
    labels = torch.tensor([0, 6, 3, 3, 1], dtype=torch.int32)
    loss = F.cross_entropy(z, labels.long())
    loss.backward()
    write_safetensors("cross_entropy", {"z": z, "labels": labels, "loss": loss.reshape(1), "dz": z.grad})


def classifier_golden():
    g = generator(14)
    R, C, c1, c2, hid, K, B = 8, 1, 3, 4, 6, 3, 2
    w1, b1 = rand(c1, C, 3, 3, gen=g), rand(c1, gen=g, lo=-0.1, hi=0.1)
    w2, b2 = rand(c2, c1, 3, 3, gen=g, lo=-0.5, hi=0.5), rand(c2, gen=g, lo=-0.1, hi=0.1)
    wf, bf = rand(hid, (R // 4) ** 2 * c2, gen=g, lo=-0.5, hi=0.5), rand(hid, gen=g, lo=-0.1, hi=0.1)
    wh, bh = rand(K, hid, gen=g), rand(K, gen=g, lo=-0.1, hi=0.1)
    x = rand(B, R, R, C, gen=g, lo=0, hi=1).detach()
    labels = torch.tensor([2, 0], dtype=torch.int32)

    def pool(t):
        return F.avg_pool2d(t.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)

    a1 = pool(F.gelu(nhwc_conv(x, w1, b1)))
    a2 = pool(F.gelu(nhwc_conv(a1, w2, b2)))
    feat = F.gelu(a2.reshape(B, -1) @ wf.T + bf)
    logits = feat @ wh.T + bh
    loss = F.cross_entropy(logits, labels.long())
    loss.backward()
    t = {"x": x, "labels": labels, "logits": logits, "features": feat, "loss": loss.reshape(1),
         "cls.conv1.weight": ours(w1), "cls.conv1.bias": b1, "cls.conv2.weight": ours(w2), "cls.conv2.bias": b2,
         "cls.fc.weight": wf, "cls.fc.bias": bf, "cls.head.weight": wh, "cls.head.bias": bh,
         "grad.cls.conv1.weight": ours(w1.grad), "grad.cls.conv1.bias": b1.grad,
         "grad.cls.conv2.weight": ours(w2.grad), "grad.cls.conv2.bias": b2.grad,
         "grad.cls.fc.weight": wf.grad, "grad.cls.fc.bias": bf.grad,
         "grad.cls.head.weight": wh.grad, "grad.cls.head.bias": bh.grad}
    write_safetensors("classifier", t, {"res": R, "channels": C, "conv1": c1, "conv2": c2, "hidden": hid,
                                        "num_classes": K, "batch": B})


if __name__ == "__main__":
    torch.set_default_dtype(torch.float64)
    conv_golden()
    pool_golden()
    ce_golden()
    classifier_golden()
