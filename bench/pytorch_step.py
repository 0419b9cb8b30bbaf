"""PyTorch's own ResNet-18 train step on random data, the yardstick for `sipl bench step`
(same model, batch, size, Adam). Prints images/s. With --siplv1, the whole SIPLv1 step on
device-resident data instead (three encoder passes of `batch`, the 2000-4096-8 head, CE + CE +
5·symKL): the ceiling for `sipl bench train`, in samples/s.

Usage: .venv/bin/python bench/pytorch_step.py --device cuda --batch 192 --size 224 \
           --steps 20 --warmup 5 [--bf16] [--channels-last] [--fused] [--siplv1] [--dry-run]

--fused: Adam through PyTorch's fused kernel (`torch.optim.Adam(fused=True)`), as sipl's default
Adam on CUDA; without it, PyTorch's default (multi-tensor) Adam.

--dry-run checks the arguments and stops before importing torch (bench/gpu_check.sh's CPU test).
"""
import argparse
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch", type=int, default=192)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--fused", action="store_true",
                    help="Adam through the fused kernel (sipl's default on CUDA)")
    ap.add_argument("--siplv1", action="store_true")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the arguments, measure nothing")
    a = ap.parse_args()
    if a.batch < 1 or a.size < 1 or a.steps < 1 or a.warmup < 0:
        ap.error("need --batch >= 1, --size >= 1, --steps >= 1, --warmup >= 0")
    if a.dry_run:
        print(f"pytorch_step: arguments accepted (dry run, nothing measured): {vars(a)}")
        return
    import torch
    import torchvision

    dev = torch.device(a.device)
    torch.backends.cudnn.benchmark = True
    net = torchvision.models.resnet18().to(dev)
    views = 3 if a.siplv1 else 1
    xs = [torch.randn(a.batch, 3, a.size, a.size, device=dev) for _ in range(views)]
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
        xs = [x.to(memory_format=torch.channels_last) for x in xs]
    head = torch.nn.Sequential(torch.nn.Linear(2000, 4096), torch.nn.ReLU(),
                               torch.nn.Linear(4096, 8)).to(dev)
    y = torch.randint(0, 8 if a.siplv1 else 1000, (a.batch,), device=dev)
    params = list(net.parameters()) + (list(head.parameters()) if a.siplv1 else [])
    opt = torch.optim.Adam(params, lr=1e-4, fused=a.fused or None)

    def step_loss():
        if not a.siplv1:
            return torch.nn.functional.cross_entropy(net(xs[0]), y)
        c, n1, n2 = (net(x) for x in xs)
        f1, f2 = head(torch.cat([c, n1], 1)), head(torch.cat([c, n2], 1))
        l1, l2 = f1.float().log_softmax(1), f2.float().log_softmax(1)
        kl = ((l1.exp() * (l1 - l2)).sum() + (l2.exp() * (l2 - l1)).sum()) / a.batch
        ce = torch.nn.functional.cross_entropy
        return ce(f1, y) + ce(f2, y) + 5 * kl

    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            loss = step_loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    ips = a.steps * a.batch / (time.perf_counter() - start)
    what, unit = ("SIPLv1 step", "samples/s") if a.siplv1 else ("resnet18 train step", "images/s")
    print(f"pytorch {what} on {a.device}: {ips:.1f} {unit} "
          f"(batch {a.batch}, {a.size}², bf16={a.bf16}, channels_last={a.channels_last}, "
          f"fused Adam={a.fused})")


if __name__ == "__main__":
    main()
