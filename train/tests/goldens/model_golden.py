"""Computes, with PyTorch and torchvision, the reference numbers the Rust model and loss must
reproduce: a seeded torchvision ResNet-18 plus the pretext head (Linear 2000->4096, ReLU,
Linear 4096->8, named fc.0 / fc.2 beside encoder.*), one forward pass in eval and in train mode
on fixed inputs, the SIPL loss (CE + CE + alpha * symKL) and one Adam step.

Run by the Rust test `model_goldens` (weights are too large to commit, so they are made on the
fly): python model_golden.py OUT_DIR SIZE
Writes OUT_DIR/weights.safetensors (the model), OUT_DIR/io.safetensors (inputs and outputs).
"""
import sys

import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file


def main():
    out, size = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(0)
    torch.set_num_threads(1)
    encoder = torchvision.models.resnet18()
    fc = torch.nn.Sequential(torch.nn.Linear(2000, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 8))
    # Non-trivial BatchNorm statistics so that eval mode is really tested.
    with torch.no_grad():
        for m in encoder.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    weights = {f"encoder.{k}": v.contiguous() for k, v in encoder.state_dict().items()
               if not k.endswith("num_batches_tracked")}
    weights.update({f"fc.{k}": v.contiguous() for k, v in fc.state_dict().items()})
    save_file(weights, f"{out}/weights.safetensors")

    views = torch.randn(3, 4, 3, size, size)
    labels = torch.tensor([0, 3, 7, 5])
    io = {"views": views, "labels": labels}

    def logits(train):
        encoder.train(train)
        emb = [encoder(views[v]) for v in range(3)]
        return emb, [fc(torch.cat([emb[0], emb[n]], 1)) for n in (1, 2)]

    with torch.no_grad():
        emb, (f1, f2) = logits(False)
    io.update(eval_embedding0=emb[0], eval_f1=f1, eval_f2=f2)

    # Train mode: batch statistics; loss, gradients, one Adam step (lr 1e-3).
    params = list(encoder.parameters()) + list(fc.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    emb, (f1, f2) = logits(True)
    lp1, lp2 = F.log_softmax(f1, 1), F.log_softmax(f2, 1)
    kl = F.kl_div(lp1, lp2, log_target=True, reduction="batchmean") + \
        F.kl_div(lp2, lp1, log_target=True, reduction="batchmean")
    loss = F.cross_entropy(f1, labels) + F.cross_entropy(f2, labels) + 5.0 * kl
    opt.zero_grad()
    loss.backward()
    opt.step()
    io.update(train_f1=f1.detach(), train_f2=f2.detach(), loss=loss.detach().reshape(1),
              sym_kl=kl.detach().reshape(1),
              after_step_fc2_weight=fc[2].weight.detach().clone(),
              after_step_conv1_weight=encoder.conv1.weight.detach().clone())
    save_file({k: v.contiguous() for k, v in io.items()}, f"{out}/io.safetensors")


if __name__ == "__main__":
    main()
