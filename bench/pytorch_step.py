"""PyTorch's own ResNet-18 train step on random data, the yardstick for `sipl bench step`
(same model, batch, size, Adam). Prints images/s.

Usage: .venv/bin/python bench/pytorch_step.py --device cuda --batch 192 --size 224 \
           --steps 20 --warmup 5 [--bf16] [--channels-last]
"""
import argparse
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    a = ap.parse_args()
    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    net = torchvision.models.resnet18().to(dev)
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev)
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 1000, (a.batch,), device=dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    ips = a.steps * a.batch / (time.perf_counter() - start)
    print(f"pytorch resnet18 train step on {a.device}: {ips:.1f} images/s "
          f"(batch {a.batch}, {a.size}², bf16={a.bf16}, channels_last={a.channels_last})")


if __name__ == "__main__":
    main()
