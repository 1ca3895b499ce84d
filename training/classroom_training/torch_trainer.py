"""Train the default network in plain PyTorch on a lent GPU, and hand the weights back to Keras.

Why this exists: two CPU cores give ~27 epochs an hour, and the recipes that reach 73% on
FER2013 run ~300. A lent GPU machine has PyTorch but no TensorFlow, and 15 minutes in all.
Keras on its PyTorch and JAX backends ran there at CPU speed (session 3, cause not established),
so this module leaves nothing between the model and the device: the dataset sits in GPU memory
as uint8, augmentation runs on whole batches on the GPU, and the train step is plain PyTorch.

What stays identical to `train` (the Keras trainer):
- the network of `models.make_default_model`, layer for layer: 3x3 convs without bias, BatchNorm
  with Keras' epsilon (1e-3) and momentum (0.99), dropout 0.4, and its L2 of 5e-4 on conv kernels
  as SGD weight decay of 1e-3 (the gradient of 5e-4 * ||w||^2);
- flip, shift (10%), rotation (0.05 turn), zoom (10%) with reflected borders, rounding back to
  pixels, random erasing; SGD with Nesterov momentum; FER+ soft targets;
- selection on PublicTest, never anything else.

The learning rate follows a warm-up then a cosine over wall-clock minutes (`--minutes`), so a run
finishes its annealing inside whatever time the machine gives. The weights come back as an .npz
keyed `<keras layer name>/<variable>` (`best.npz`), which `python -m classroom_training
import-weights` loads into the Keras model for `report` and `export`.

This file imports only numpy and torch, so the GPU machine needs no project dependencies:

    python -m classroom_training pack --out .gpu/fer2013-pack.npz.xz               # here
    python training/classroom_training/torch_trainer.py --data .gpu/fer2013-pack.npz.xz \\
        --minutes 7 --out runs/gpu-a                                              # there
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import lzma
import math
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger("classroom_training.torch_trainer")

NUM_EMOTIONS = 7
CROP_SIZE = 48
CONV_WEIGHT_DECAY = 2 * 5e-4  # Keras' l2(5e-4) adds 5e-4 * ||w||^2 to the loss: gradient 1e-3 * w


# ---------------------------------------------------------------- the network, as in models.py


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    """Keras' BatchNormalization defaults: epsilon 1e-3, moving average momentum 0.99."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class ResidualStage(nn.Module):
    """Two 3x3 convs with an identity (or 1x1 projection) shortcut, then 2x2 max-pool."""

    def __init__(self, channels_in: int, channels_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False)
        self.bn1 = _batch_norm(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = _batch_norm(channels_out)
        self.projects = channels_in != channels_out
        if self.projects:
            self.shortcut_conv = nn.Conv2d(channels_in, channels_out, 1, bias=False)
            self.shortcut_bn = _batch_norm(channels_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut_bn(self.shortcut_conv(x)) if self.projects else x
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)) + shortcut)
        return F.max_pool2d(y, 2)


class DefaultNet(nn.Module):
    """`models.make_default_model`: a stem conv, four residual stages (48->3 px), global pooling.

    Takes float pixels in [0, 255], NCHW; returns logits (the Keras model ends in a softmax).
    """

    def __init__(self, width: int = 32, dropout: float = 0.4):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.stem_bn = _batch_norm(width)
        widths = [width, width, width * 2, width * 4, width * 8]
        self.stages = nn.ModuleList(ResidualStage(a, b) for a, b in pairwise(widths))
        self.dropout = nn.Dropout(dropout)
        self.probabilities = nn.Linear(width * 8, NUM_EMOTIONS)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem_conv(pixels / 255.0)))
        for stage in self.stages:
            x = stage(x)
        return self.probabilities(self.dropout(x.mean(dim=(2, 3))))


# ---------------------------------------------------------------- weights keyed by Keras names


def _keras_names(net: DefaultNet) -> list[tuple[str, nn.Module]]:
    """(Keras layer name, module) pairs; the names are those `models.make_default_model` gives."""
    pairs = [("stem_conv", net.stem_conv), ("stem_bn", net.stem_bn)]
    for number, stage in enumerate(net.stages, start=1):
        parts = ["conv1", "bn1", "conv2", "bn2"] + (["shortcut_conv", "shortcut_bn"] if stage.projects else [])
        pairs += [(f"stage{number}_{part}", getattr(stage, part)) for part in parts]
    return pairs + [("probabilities", net.probabilities)]


def _keras_variables(net: DefaultNet) -> list[tuple[str, torch.Tensor, tuple[int, ...] | None]]:
    """(Keras key, the tensor that holds it here, the permutation from PyTorch's layout to Keras')."""
    variables = []
    for name, module in _keras_names(net):
        if isinstance(module, nn.Conv2d):
            variables.append((f"{name}/kernel", module.weight, (2, 3, 1, 0)))  # OIHW -> HWIO
        elif isinstance(module, nn.BatchNorm2d):
            variables += [
                (f"{name}/gamma", module.weight, None), (f"{name}/beta", module.bias, None),
                (f"{name}/moving_mean", module.running_mean, None),
                (f"{name}/moving_variance", module.running_var, None),
            ]  # fmt: skip
        else:
            variables += [(f"{name}/kernel", module.weight, (1, 0)), (f"{name}/bias", module.bias, None)]
    return variables


def to_keras_arrays(net: DefaultNet) -> dict[str, np.ndarray]:
    """Every weight as Keras stores it: conv kernels HWIO, dense kernels (in, out), BN statistics."""
    return {
        key: (tensor.detach().permute(*to_keras) if to_keras else tensor.detach()).float().cpu().numpy().copy()
        for key, tensor, to_keras in _keras_variables(net)
    }


def load_keras_arrays(net: DefaultNet, arrays: dict[str, np.ndarray]) -> None:
    """The inverse of `to_keras_arrays`: a warm start from a Keras model's weights."""
    variables = _keras_variables(net)
    missing = sorted(key for key, _, _ in variables if key not in arrays)
    if missing:
        raise ValueError(f"weights file lacks {len(missing)} arrays, first {missing[0]}")
    for key, target, to_keras in variables:
        value = torch.from_numpy(np.asarray(arrays[key], dtype=np.float32))
        if to_keras:
            value = value.permute(*(int(axis) for axis in np.argsort(to_keras)))
        if value.shape != target.shape:
            raise ValueError(f"{key}: shape {tuple(value.shape)}, the network has {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(value)


# ---------------------------------------------------------------- data and augmentation


def load_pack(path: Path) -> dict[str, np.ndarray]:
    """A pack from `python -m classroom_training pack` (.npz.xz), or already decompressed (.npz)."""
    raw = Path(path).read_bytes()
    with np.load(io.BytesIO(lzma.decompress(raw) if str(path).endswith(".xz") else raw)) as npz:
        return {name: npz[name] for name in npz.files}


def soft_targets(labels: np.ndarray, votes: np.ndarray, ferplus_weight: float) -> np.ndarray:
    """(1 - w) * one-hot(FER2013 label) + w * FER+ vote shares, as `data.soft_targets`."""
    onehot = np.eye(NUM_EMOTIONS, dtype=np.float32)[labels]
    totals = votes.sum(axis=1, keepdims=True)
    shares = np.where(totals > 0, votes / np.maximum(totals, 1), onehot)
    return ((1 - ferplus_weight) * onehot + ferplus_weight * shares).astype(np.float32)


def augment(pixels: torch.Tensor, erase_probability: float = 0.5) -> torch.Tensor:
    """Flip, shift, rotate and zoom in one affine resample (reflected borders), round, then erase.

    The ranges are those of `pipeline._augmenter` and `pipeline._random_erasing`; one
    bilinear resample instead of Keras' three keeps the crops sharper.
    """
    batch, device = pixels.shape[0], pixels.device
    uniform = lambda low, high: torch.rand(batch, device=device) * (high - low) + low  # noqa: E731
    flip = torch.where(torch.rand(batch, device=device) < 0.5, -1.0, 1.0)
    angle = uniform(-0.05, 0.05) * 2 * math.pi
    zoom = uniform(0.9, 1.1)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, uniform(-0.2, 0.2)], dim=1),  # shifts: 10% of [-1, 1]
            torch.stack([sin * flip, cos, uniform(-0.2, 0.2)], dim=1),
        ],
        dim=1,
    )
    images = pixels.float()
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    images = images.round().clamp(0, 255)
    side = torch.randint(6, 20, (batch, 1, 1, 1), device=device)
    cy = torch.randint(0, CROP_SIZE, (batch, 1, 1, 1), device=device)
    cx = torch.randint(0, CROP_SIZE, (batch, 1, 1, 1), device=device)
    grid_rows = torch.arange(CROP_SIZE, device=device).view(1, 1, CROP_SIZE, 1)
    grid_cols = torch.arange(CROP_SIZE, device=device).view(1, 1, 1, CROP_SIZE)
    inside = ((grid_rows - cy).abs() * 2 < side) & ((grid_cols - cx).abs() * 2 < side)
    erase = inside & (torch.rand(batch, 1, 1, 1, device=device) < erase_probability)
    return images.masked_fill(erase, 0.0)


# ---------------------------------------------------------------- training


def learning_rate(elapsed: float, budget: float, warmup: float, peak: float) -> float:
    """Linear warm-up for `warmup` seconds, then a cosine to zero at `budget` seconds."""
    if elapsed < warmup:
        return peak * max(elapsed, 1e-3) / warmup
    done = min((elapsed - warmup) / max(budget - warmup, 1e-9), 1.0)
    return peak * 0.5 * (1 + math.cos(math.pi * done))


@torch.no_grad()
def evaluate(
    net: DefaultNet, pixels: torch.Tensor, labels: torch.Tensor, flip_tta: bool = False
) -> tuple[float, float]:
    """(loss, accuracy) on PublicTest in float32, the precision the exported model serves."""
    net.eval()
    probabilities = []
    for start in range(0, len(pixels), 1024):
        batch = pixels[start : start + 1024].float()
        p = F.softmax(net(batch), dim=1)
        if flip_tta:
            p = (p + F.softmax(net(batch.flip(3)), dim=1)) / 2
        probabilities.append(p)
    p = torch.cat(probabilities)
    loss = F.nll_loss(p.clamp_min(1e-7).log(), labels).item()
    return loss, (p.argmax(1) == labels).float().mean().item()


def _optimizer(net: DefaultNet, peak: float) -> torch.optim.SGD:
    """SGD + Nesterov; weight decay on conv kernels only, where the Keras model has its L2."""
    conv = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d)]
    conv_ids = {id(p) for p in conv}
    rest = [p for p in net.parameters() if id(p) not in conv_ids]
    groups = [{"params": conv, "weight_decay": CONV_WEIGHT_DECAY}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=peak, momentum=0.9, nesterov=True)


def _save(path: Path, arrays: dict[str, np.ndarray], **meta) -> None:
    """Write then rename, so a run cut off mid-write never leaves a broken best.npz."""
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, **arrays, **{f"meta/{k}": np.asarray(v) for k, v in meta.items()})
    partial.replace(path)


def train(args: argparse.Namespace) -> float:
    """One run within `args.minutes`; returns the best PublicTest accuracy (float32)."""
    torch.manual_seed(args.seed)
    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.backends.cudnn.benchmark = True
    data = load_pack(args.data)
    limit = args.limit or len(data["train_y"])
    to_nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.reshape(-1, 1, CROP_SIZE, CROP_SIZE))).to(device)  # noqa: E731
    train_x = to_nchw(data["train_x"][:limit])
    targets = torch.from_numpy(
        soft_targets(data["train_y"][:limit], data["train_votes"][:limit].astype(np.float32), args.ferplus_weight)
    ).to(device)
    val_x, val_y = to_nchw(data["val_x"]), torch.from_numpy(data["val_y"].astype(np.int64)).to(device)

    net = DefaultNet(width=args.width).to(device)
    if args.init_from:
        with np.load(args.init_from) as npz:
            load_keras_arrays(net, {k: npz[k] for k in npz.files})
        log.info("warm start from %s: PublicTest %.4f", args.init_from, evaluate(net, val_x, val_y)[1])
    optimizer = _optimizer(net, args.learning_rate)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log.info(
        "torch %s on %s: %d training rows, batch %d, %.1f min",
        torch.__version__,
        where,
        limit,
        args.batch_size,
        args.minutes,
    )

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    history = open(out / "history.csv", "w", newline="")  # noqa: SIM115
    writer = csv.writer(history)
    writer.writerow(["epoch", "seconds", "learning_rate", "loss", "accuracy", "val_loss", "val_accuracy"])

    budget, steps = args.minutes * 60, limit // args.batch_size
    started, best, epoch, epoch_seconds = time.monotonic(), -1.0, 0, 0.0
    while epoch < args.max_epochs and (time.monotonic() - started) + epoch_seconds < budget:
        epoch_started = time.monotonic()
        net.train()
        order = torch.randperm(limit, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for step in range(steps):
            lr = learning_rate(time.monotonic() - started, budget, args.warmup_minutes * 60, args.learning_rate)
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = order[step * args.batch_size : (step + 1) * args.batch_size]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bfloat16):
                logits = net(augment(train_x[index]))
            target = targets[index]
            loss = -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == target.argmax(1)).sum()
            if epoch == 0 and step == 19:
                log.info("first 20 steps: %.3f s a step", (time.monotonic() - epoch_started) / 20)
        val_loss, val_accuracy = evaluate(net, val_x, val_y)
        epoch += 1
        epoch_seconds = time.monotonic() - epoch_started
        row = [epoch, round(time.monotonic() - started, 1), lr, loss_sum.item() / steps,
               correct.item() / (steps * args.batch_size), val_loss, val_accuracy]  # fmt: skip
        writer.writerow(row)
        history.flush()
        if val_accuracy > best:
            best = val_accuracy
            _save(out / "best.npz", to_keras_arrays(net), epoch=epoch, val_accuracy=val_accuracy)
        log.info("epoch %d %.1fs lr %.4f loss %.4f acc %.4f val_acc %.4f best %.4f",
                 epoch, epoch_seconds, lr, row[3], row[4], val_accuracy, best)  # fmt: skip
    history.close()
    _save(out / "last.npz", to_keras_arrays(net), epoch=epoch, val_accuracy=val_accuracy)
    log.info("finished: %d epochs in %.1f min, best PublicTest %.4f", epoch, (time.monotonic() - started) / 60, best)
    return best


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="from `classroom_training pack` (.npz.xz or .npz)")
    parser.add_argument("--out", type=Path, required=True, help="folder for best.npz, last.npz, history.csv")
    parser.add_argument("--minutes", type=float, default=7.0, help="wall-clock budget for the whole run")
    parser.add_argument("--max-epochs", type=int, default=10_000)
    parser.add_argument("--warmup-minutes", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.05, help="peak learning rate")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--ferplus-weight", type=float, default=0.3)
    parser.add_argument("--init-from", type=Path, help="Keras-named weights (.npz) to start from")
    parser.add_argument("--float32", dest="bfloat16", action="store_false", help="no bfloat16 autocast")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--device", default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    train(parse_args(argv))


if __name__ == "__main__":
    main()
