"""PyTorch reference for the dynas-supernet training-throughput figure.

Re-implements the same loop as `examples/experiments/supernet_throughput.rs` in eager PyTorch, the way
once-for-all's dynamic layers do it: the `ofa_mnist` supernet (first conv 1->16 k3 s2,
MBConv e1 k3 16->16, one elastic stage of width 24 with up to 4 blocks, kernels 3/5/7 via
kernel-transform matrices, expand 3/4/6, final expand 24->40, feature mix 40->80, linear
80->10), sandwich rule (largest, smallest, N random subnets per step) with in-place
distillation, label smoothing 0.1, SGD with Nesterov momentum 0.9 and weight decay 5e-5,
batches of synthetic 1x28x28 images, resolution 20 or 28 per subnet.

    python3 benches/supernet_throughput.py \
        --steps 30 --warmup 5 --threads 2 [--subnets runs/throughput-subnets.json]

With `--subnets` the subnets of every step (warm-up first) come from the JSON file the Rust side
wrote (a list of steps, each a list of `{dimension name: choice label}`), so both sides train
exactly the same subnets; without it they are drawn here (not the Rust side's draws).
"""

import argparse
import json
import math
import random
import time

import torch
import torch.nn.functional as F
from torch import nn

KERNELS = [3, 5, 7]
EXPANDS = [3, 4, 6]
DEPTHS = [2, 3, 4]
RESOLUTIONS = [20, 28]


def make_divisible(v, d=8):
    r = max(d, (v + d // 2) // d * d)
    return r + d if r * 10 < v * 9 else r


def act(x, kind):
    return F.hardswish(x) if kind == "hswish" else F.relu(x)


class DynBN(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)

    def forward(self, x):
        c = x.size(1)
        bn = self.bn
        return F.batch_norm(x, bn.running_mean[:c], bn.running_var[:c], bn.weight[:c],
                            bn.bias[:c], self.training, bn.momentum, bn.eps)


class DynConv(nn.Module):
    def __init__(self, cin, cout, kernels, depthwise=False, transform=False):
        super().__init__()
        self.kmax = max(kernels)
        self.kernels = sorted(kernels)
        self.depthwise = depthwise
        self.weight = nn.Parameter(torch.empty(cout, 1 if depthwise else cin, self.kmax, self.kmax))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.mats = nn.ParameterDict()
        if transform:
            for small, large in zip(self.kernels[:-1], self.kernels[1:]):
                self.mats[f"{large}to{small}"] = nn.Parameter(torch.eye(small * small))

    def active(self, cout, cin, k):
        w = self.weight[:cout] if self.depthwise else self.weight[:cout, :cin]
        if k == self.kmax or len(self.mats) == 0:
            s = (self.kmax - k) // 2
            return w[:, :, s:s + k, s:s + k]
        for large, small in reversed(list(zip(self.kernels[1:], self.kernels[:-1]))):
            if large <= k:
                break
            s = (large - small) // 2
            crop = w[:, :, s:s + small, s:s + small].contiguous()
            o, i = crop.shape[:2]
            w = F.linear(crop.view(o * i, small * small), self.mats[f"{large}to{small}"])
            w = w.view(o, i, small, small)
        return w

    def forward(self, x, cout, k, stride=1):
        cin = x.size(1)
        w = self.active(cout, cin, k)
        return F.conv2d(x, w, None, stride, k // 2, 1, cin if self.depthwise else 1)


class Block(nn.Module):
    def __init__(self, cin, cout, mid, kernels, stride, expand):
        super().__init__()
        self.stride = stride
        if expand:
            self.expand_conv, self.expand_bn = DynConv(cin, mid, [1]), DynBN(mid)
        else:
            self.expand_conv = None
        self.dw, self.dw_bn = DynConv(mid, mid, kernels, True, len(kernels) > 1), DynBN(mid)
        self.proj, self.proj_bn = DynConv(mid, cout, [1]), DynBN(cout)

    def forward(self, x, cout, mid, k):
        h = x
        if mid != x.size(1):
            h = F.relu(self.expand_bn(self.expand_conv(h, mid, 1)))
        h = F.relu(self.dw_bn(self.dw(h, mid, k, self.stride)))
        h = self.proj_bn(self.proj(h, cout, 1))
        if self.stride == 1 and x.size(1) == cout:
            h = h + x
        return h


class Supernet(nn.Module):
    def __init__(self):
        super().__init__()
        self.first_conv, self.first_bn = DynConv(1, 16, [3]), DynBN(16)
        self.first_block = Block(16, 16, 16, [3], 1, False)
        self.blocks = nn.ModuleList(
            Block(16 if i == 0 else 24, 24, make_divisible((16 if i == 0 else 24) * 6),
                  KERNELS, 2 if i == 0 else 1, True) for i in range(4))
        self.final_conv, self.final_bn = DynConv(24, 40, [1]), DynBN(40)
        self.mix = DynConv(40, 80, [1])
        self.classifier = nn.Linear(80, 10)

    def forward(self, x, arch):
        res, depth, ks, es = arch
        if x.size(-1) != res:
            x = F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)
        x = F.hardswish(self.first_bn(self.first_conv(x, 16, 3, 2)))
        x = self.first_block(x, 16, 16, 3)
        for i in range(depth):
            cin = x.size(1)
            x = self.blocks[i](x, 24, make_divisible(cin * es[i]), ks[i])
        x = F.hardswish(self.final_bn(self.final_conv(x, 40, 1)))
        x = F.adaptive_avg_pool2d(x, 1)
        x = F.hardswish(self.mix(x, 80, 1))
        return self.classifier(x.flatten(1))


def largest():
    return (28, 4, [7] * 4, [6] * 4)


def smallest():
    return (20, 2, [3] * 2, [3] * 2)


def sample(rng):
    d = rng.choice(DEPTHS)
    return (rng.choice(RESOLUTIONS), d, [rng.choice(KERNELS) for _ in range(d)],
            [rng.choice(EXPANDS) for _ in range(d)])


def load_subnets(path, count):
    with open(path) as f:
        steps = json.load(f)
    if len(steps) < count:
        raise SystemExit(f"{path} lists {len(steps)} steps, {count} needed")
    out = []
    for step in steps[:count]:
        archs = []
        for g in step:
            d = int(g["stage1.depth"])
            archs.append((int(g["resolution"]), d,
                          [int(g[f"stage1.block{b}.kernel"]) for b in range(d)],
                          [int(g[f"stage1.block{b}.expand"]) for b in range(d)]))
        out.append(archs)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--random-subnets", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--subnets", default=None)
    args = p.parse_args()
    fixed = load_subnets(args.subnets, args.warmup + args.steps) if args.subnets else None
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    net = Supernet()
    no_decay = [p for n, p in net.named_parameters() if "bn" in n or n.endswith("bias")]
    decay = [p for n, p in net.named_parameters() if not ("bn" in n or n.endswith("bias"))]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-5},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=0.1, momentum=0.9, nesterov=True)
    images = torch.randn(args.batch_size, 1, 28, 28)
    labels = torch.randint(0, 10, (args.batch_size,))
    net.train()

    def step(index):
        opt.zero_grad(set_to_none=False)
        if fixed is not None:
            archs = fixed[index]
        else:
            archs = [largest(), smallest()] + [sample(rng) for _ in range(args.random_subnets)]
        soft = None
        for i, arch in enumerate(archs):
            logits = net(images, arch)
            hard = F.cross_entropy(logits, labels, label_smoothing=0.1)
            if i == 0:
                loss = hard
                soft = logits.detach().softmax(-1)
            else:
                loss = -(soft * logits.log_softmax(-1)).sum(-1).mean()
            loss.backward()
        opt.step()
        return len(archs)

    for i in range(args.warmup):
        step(i)
    t = time.perf_counter()
    subnets = 0
    for i in range(args.steps):
        subnets += step(args.warmup + i)
    dt = time.perf_counter() - t
    print(json.dumps({
        "impl": "pytorch-eager", "torch": torch.__version__, "threads": torch.get_num_threads(),
        "steps": args.steps, "batch_size": args.batch_size, "seconds": dt,
        "images_per_s": args.steps * args.batch_size / dt,
        "subnet_images_per_s": subnets * args.batch_size / dt, "subnets_file": args.subnets,
    }))


if __name__ == "__main__":
    main()
