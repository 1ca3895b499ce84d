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
import copy
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


class FastBlock(nn.Module):
    """`models._fast_block`: two plain 3x3 convs, or two depthwise-separable ones, plus a shortcut."""

    def __init__(self, channels_in: int, channels_out: int, block: str):
        super().__init__()
        self.block = block
        if block == "plain":
            self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1, bias=False)
            self.bn1 = _batch_norm(channels_out)
            self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
            self.bn2 = _batch_norm(channels_out)
        else:
            for part, (a, b) in (("sep1", (channels_in, channels_out)), ("sep2", (channels_out, channels_out))):
                setattr(self, f"{part}_dw", nn.Conv2d(a, a, 3, padding=1, groups=a, bias=False))
                setattr(self, f"{part}_pw", nn.Conv2d(a, b, 1, bias=False))
                setattr(self, f"{part}_bn", _batch_norm(b))
        self.projects = channels_in != channels_out
        if self.projects:
            self.shortcut_conv = nn.Conv2d(channels_in, channels_out, 1, bias=False)
            self.shortcut_bn = _batch_norm(channels_out)

    def parts(self) -> list[str]:
        names = ["conv1", "bn1", "conv2", "bn2"] if self.block == "plain" else [
            f"{s}_{p}" for s in ("sep1", "sep2") for p in ("dw", "pw", "bn")
        ]  # fmt: skip
        return names + (["shortcut_conv", "shortcut_bn"] if self.projects else [])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut_bn(self.shortcut_conv(x)) if self.projects else x
        if self.block == "plain":
            y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        else:
            y = F.relu(self.sep1_bn(self.sep1_pw(self.sep1_dw(x))))
            y = self.sep2_bn(self.sep2_pw(self.sep2_dw(y)))
        return F.relu(y + shortcut)


class FastNet(nn.Module):
    """`models.make_fast_model`: a stride-2 stem (48 -> 24 px), stages at 24, 12, 6 and 3 px."""

    def __init__(self, width: int = 32, block: str = "plain", depth: int = 1, dropout: float = 0.4):
        super().__init__()
        self.stem_conv = nn.Conv2d(1, width, 3, stride=2, padding=1, bias=False)  # Keras: ZeroPadding2D(1), valid
        self.stem_bn = _batch_norm(width)
        self.block_names: list[str] = []
        blocks, channels = [], width
        for number in range(1, 5):
            for index in range(1, depth + 1):
                out = width * 2 ** (number - 1)
                blocks.append(FastBlock(channels, out, block))
                self.block_names.append(f"stage{number}_block{index}")
                channels = out
        self.blocks = nn.ModuleList(blocks)
        self.depth = depth
        self.dropout = nn.Dropout(dropout)
        self.probabilities = nn.Linear(channels, NUM_EMOTIONS)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem_conv(pixels / 255.0)))
        for position, block in enumerate(self.blocks):
            x = block(x)
            if (position + 1) % self.depth == 0 and position + 1 < len(self.blocks):
                x = F.max_pool2d(x, 2)
        return self.probabilities(self.dropout(x.mean(dim=(2, 3))))


FAST_BLOCKS = ("plain", "separable")


def build_net(spec: str) -> nn.Module:
    """`default-w32` (models.make_default_model) or `plain-w32-d1` / `separable-w48-d1` (make_fast_model)."""
    parts = spec.split("-")
    try:
        if parts[0] == "default" and len(parts) == 2 and parts[1].startswith("w"):
            return DefaultNet(width=int(parts[1][1:]))
        if parts[0] in FAST_BLOCKS and len(parts) == 3 and parts[1].startswith("w") and parts[2].startswith("d"):
            return FastNet(width=int(parts[1][1:]), block=parts[0], depth=int(parts[2][1:]))
    except ValueError:
        pass
    raise ValueError(f"a network is default-w<width> or <plain|separable>-w<width>-d<depth>, got {spec!r}")


# ---------------------------------------------------------------- weights keyed by Keras names


def _keras_names(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """(Keras layer name, module) pairs; the names are those `models.make_default_model` gives."""
    pairs = [("stem_conv", net.stem_conv), ("stem_bn", net.stem_bn)]
    if isinstance(net, FastNet):
        for prefix, block in zip(net.block_names, net.blocks, strict=True):
            pairs += [(f"{prefix}_{part}", getattr(block, part)) for part in block.parts()]
        return pairs + [("probabilities", net.probabilities)]
    for number, stage in enumerate(net.stages, start=1):
        parts = ["conv1", "bn1", "conv2", "bn2"] + (["shortcut_conv", "shortcut_bn"] if stage.projects else [])
        pairs += [(f"stage{number}_{part}", getattr(stage, part)) for part in parts]
    return pairs + [("probabilities", net.probabilities)]


def _keras_variables(net: nn.Module) -> list[tuple[str, torch.Tensor, tuple[int, ...] | None]]:
    """(Keras key, the tensor that holds it here, the permutation from PyTorch's layout to Keras')."""
    variables = []
    for name, module in _keras_names(net):
        if isinstance(module, nn.Conv2d) and module.groups > 1:
            variables.append((f"{name}/kernel", module.weight, (2, 3, 0, 1)))  # depthwise: C1HW -> HWC1
        elif isinstance(module, nn.Conv2d):
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


def to_keras_arrays(net: nn.Module) -> dict[str, np.ndarray]:
    """Every weight as Keras stores it: conv kernels HWIO, dense kernels (in, out), BN statistics."""
    return {
        key: (tensor.detach().permute(*to_keras) if to_keras else tensor.detach()).float().cpu().numpy().copy()
        for key, tensor, to_keras in _keras_variables(net)
    }


def load_keras_arrays(net: nn.Module, arrays: dict[str, np.ndarray]) -> None:
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


def predict_gradient(images: np.ndarray, top: int) -> np.ndarray:
    """Each pixel's prediction from its left, upper and upper-left neighbours (left + up - corner)."""
    x = images.astype(np.int16)
    prediction = np.zeros_like(x)
    prediction[:, 1:, 1:] = np.clip(x[:, 1:, :-1] + x[:, :-1, 1:] - x[:, :-1, :-1], 0, top)
    prediction[:, 0, 1:], prediction[:, 1:, 0] = x[:, 0, :-1], x[:, :-1, 0]
    return prediction


def encode_images(images: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [n, 48, 48] kept to `bits` bits, as residuals of the gradient predictor (xz packs them ~30% smaller)."""
    levels = images.reshape(-1, CROP_SIZE, CROP_SIZE) >> (8 - bits)
    return ((levels.astype(np.int16) - predict_gradient(levels, 2**bits - 1)) % 256).astype(np.uint8)


def decode_images(residuals: np.ndarray, bits: int) -> np.ndarray:
    """The inverse of `encode_images`; dropped low bits come back as the middle of their interval."""
    levels, wide = np.zeros(residuals.shape, np.int16), residuals.astype(np.int16)
    top = 2**bits - 1
    for row in range(CROP_SIZE):
        for col in range(CROP_SIZE):
            if row and col:
                left, up, corner = levels[:, row, col - 1], levels[:, row - 1, col], levels[:, row - 1, col - 1]
                guess = np.clip(left + up - corner, 0, top)
            else:
                guess = levels[:, row, col - 1] if col else (levels[:, row - 1, col] if row else 0)
            levels[:, row, col] = (wide[:, row, col] + guess) % 256
    shift = 8 - bits
    return ((levels << shift) + (1 << (shift - 1) if shift else 0)).astype(np.uint8)


def load_pack(path: Path) -> dict[str, np.ndarray]:
    """A pack from `python -m classroom_training pack` (.npz.xz), or already decompressed (.npz).

    A compact pack (`pack --train-bits`) holds `<split>_x_residuals` and `<split>_x_bits` instead of
    `<split>_x`; they are decoded here, so callers always get uint8 [n, 48, 48] images.
    """
    raw = Path(path).read_bytes()
    with np.load(io.BytesIO(lzma.decompress(raw) if str(path).endswith(".xz") else raw)) as npz:
        data = {name: npz[name] for name in npz.files}
    for split in ("train", "val"):
        if f"{split}_x_residuals" in data:
            bits = int(data.pop(f"{split}_x_bits"))
            data[f"{split}_x"] = decode_images(data.pop(f"{split}_x_residuals"), bits)
    return data


def soft_targets(labels: np.ndarray, votes: np.ndarray, ferplus_weight: float) -> np.ndarray:
    """(1 - w) * one-hot(FER2013 label) + w * FER+ vote shares, as `data.soft_targets`."""
    onehot = np.eye(NUM_EMOTIONS, dtype=np.float32)[labels]
    totals = votes.sum(axis=1, keepdims=True)
    shares = np.where(totals > 0, votes / np.maximum(totals, 1), onehot)
    return ((1 - ferplus_weight) * onehot + ferplus_weight * shares).astype(np.float32)


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): for one model's p = softmax(z) this is exactly softmax(z / T)."""
    logits = np.log(np.clip(probabilities, 1e-8, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def load_teacher_probs(path: Path, train_y: np.ndarray, temperature: float) -> np.ndarray:
    """The Training rows' teacher probabilities at `temperature`, checked against the pack's labels."""
    with np.load(path) as npz:
        probs, labels = npz["train_probs"], npz["train_y"]
    if probs.shape != (len(train_y), NUM_EMOTIONS) or not np.array_equal(labels, train_y):
        raise ValueError(f"{path} was not made from this pack ({probs.shape[0]} rows, the pack has {len(train_y)})")
    return soften(probs, temperature)


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


def mix(images: torch.Tensor, targets: torch.Tensor, concentration: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al., 2018): each image blended with another of the batch, targets alike.

    With a teacher run on every batch this is the "consistent teaching" of Beyer et al. (2022):
    the teacher labels the very blend the student sees, so the blends carry the teacher's
    knowledge between classes instead of a made-up label. One mixing weight per image, drawn
    from Beta(c, c) and folded to >= 0.5 so each blend keeps a dominant face.
    """
    weight = torch.distributions.Beta(concentration, concentration).sample((images.shape[0],)).to(images.device)
    weight = torch.maximum(weight, 1 - weight)
    partner = torch.randperm(images.shape[0], device=images.device)
    blend = lambda a, w: w * a + (1 - w) * a[partner]  # noqa: E731
    return blend(images, weight.view(-1, 1, 1, 1)), blend(targets, weight.view(-1, 1))


@torch.no_grad()
def recalibrate_batch_norm(
    net: nn.Module, train_x: torch.Tensor, batches: int = 60, batch_size: int = 256
) -> nn.Module:
    """A copy of `net` whose batch-norm statistics are re-estimated on unmixed training crops.

    Trained on mixup's blends, the running statistics describe blends (less contrast than a
    face), and the served model sees faces: measured on the CPU student after 3 epochs of
    mixup, PublicTest went from 65.39% to 67.62% with nothing but this re-estimate (60 batches
    of 256 augmented crops, a cumulative average). The weights are untouched.
    """
    calibrated = copy.deepcopy(net)
    for module in calibrated.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the batches below
    calibrated.train()
    generator = torch.Generator(device="cpu").manual_seed(0)
    for _ in range(batches):
        index = torch.randint(0, len(train_x), (batch_size,), generator=generator).to(train_x.device)
        calibrated(augment(train_x[index]))
    return calibrated.eval()


# ---------------------------------------------------------------- training


def learning_rate(elapsed: float, budget: float, warmup: float, peak: float) -> float:
    """Linear warm-up for `warmup` seconds, then a cosine to zero at `budget` seconds."""
    if elapsed < warmup:
        return peak * max(elapsed, 1e-3) / warmup
    done = min((elapsed - warmup) / max(budget - warmup, 1e-9), 1.0)
    return peak * 0.5 * (1 + math.cos(math.pi * done))


@torch.no_grad()
def predict(net: nn.Module, pixels: torch.Tensor, flip_tta: bool = False) -> torch.Tensor:
    """Probabilities [n, 7] in float32, the precision the exported model serves."""
    net.eval()
    probabilities = []
    for start in range(0, len(pixels), 1024):
        batch = pixels[start : start + 1024].float()
        p = F.softmax(net(batch), dim=1)
        if flip_tta:
            p = (p + F.softmax(net(batch.flip(3)), dim=1)) / 2
        probabilities.append(p)
    return torch.cat(probabilities)


def score(probabilities: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """(loss, accuracy) of probabilities against integer labels."""
    loss = F.nll_loss(probabilities.clamp_min(1e-7).log(), labels).item()
    return loss, (probabilities.argmax(1) == labels).float().mean().item()


def evaluate(net: nn.Module, pixels: torch.Tensor, labels: torch.Tensor, flip_tta: bool = False) -> tuple[float, float]:
    """(loss, accuracy) on PublicTest in float32, the precision the exported model serves."""
    return score(predict(net, pixels, flip_tta), labels)


def distillation_loss(
    logits: torch.Tensor, target: torch.Tensor, teacher: torch.Tensor | None, alpha: float, temperature: float
) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(target, student).

    `teacher` holds the ensemble's probabilities at temperature T (the mean of its members'
    softened outputs); the T^2 keeps the soft term's gradient on the hard term's scale (Hinton
    et al., 2015). Without a teacher this is the plain soft-target cross-entropy.
    """
    hard = -(target * F.log_softmax(logits.float(), dim=1)).sum(1).mean()
    if teacher is None or alpha == 0:
        return hard
    student = F.log_softmax(logits.float() / temperature, dim=1)
    soft = (teacher * (teacher.clamp_min(1e-8).log() - student)).sum(1).mean()
    return alpha * temperature**2 * soft + (1 - alpha) * hard


def _load_net(spec: str, path: Path, device: torch.device) -> nn.Module:
    net = build_net(spec)
    with np.load(path) as npz:
        load_keras_arrays(net, {k: npz[k] for k in npz.files if not k.startswith("meta/")})
    net = net.to(device)
    return (net.to(memory_format=torch.channels_last) if device.type == "cuda" else net).eval()


def load_teachers(specs: list[str], device: torch.device) -> list[tuple[str, nn.Module]]:
    """`SPEC=PATH` items (e.g. `default-w32=.gpu/v5-named.npz`) as frozen networks in eval mode."""
    teachers = []
    for item in specs:
        spec, _, path = item.partition("=")
        if not path:
            raise ValueError(f"a teacher is SPEC=PATH, got {item!r}")
        net = _load_net(spec, Path(path), device)
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        teachers.append((f"{spec}={path}", net))
    return teachers


@torch.no_grad()
def teacher_probabilities(
    teachers: list[tuple[str, nn.Module]], images: torch.Tensor, temperature: float, bfloat16: bool
) -> torch.Tensor | None:
    """The ensemble's mean softened probabilities on this (augmented) batch, or None without teachers."""
    if not teachers:
        return None
    total = None
    for _, net in teachers:
        with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=bfloat16):
            logits = net(images)
        p = F.softmax(logits.float() / temperature, dim=1)
        total = p if total is None else total + p
    return total / len(teachers)


def _optimizer(net: nn.Module, peak: float) -> torch.optim.SGD:
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


class Run:
    """One network being trained: its optimiser, its history file and its best PublicTest score."""

    def __init__(self, spec: str, out: Path, device: torch.device, args: argparse.Namespace):
        self.spec, self.out = spec, out
        self.net = build_net(spec).to(device)
        if device.type == "cuda" or args.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.init_from = args.init_from or (args.init_dir / spec / "best.npz" if args.init_dir else None)
        if self.init_from and not Path(self.init_from).exists() and not args.init_from:
            log.warning("%s: no %s, starting from scratch", spec, self.init_from)
            self.init_from = None
        if self.init_from:
            with np.load(self.init_from) as npz:
                load_keras_arrays(self.net, {k: npz[k] for k in npz.files if not k.startswith("meta/")})
        self.optimizer = _optimizer(self.net, args.learning_rate)
        out.mkdir(parents=True, exist_ok=True)
        self.best, self.loss_sum, self.correct = -1.0, None, None
        self.epoch, self.elapsed = 0, 0.0
        resuming = args.resume and (out / CHECKPOINT).exists()
        if resuming:
            self.restore(device)
        self.history = open(out / "history.csv", "a" if resuming else "w", newline="")  # noqa: SIM115
        self.writer = csv.writer(self.history)
        if not resuming:
            self.writer.writerow(["epoch", "seconds", "learning_rate", "loss", "accuracy", "val_loss", "val_accuracy"])

    def checkpoint(self, elapsed: float) -> None:
        """Everything `--resume` needs: weights, optimiser, epoch, best so far, budget spent."""
        state = {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict(), "epoch": self.epoch,
                 "best": self.best, "elapsed": elapsed}  # fmt: skip
        torch.save(state, self.out / f"{CHECKPOINT}.partial")
        (self.out / f"{CHECKPOINT}.partial").replace(self.out / CHECKPOINT)

    def restore(self, device: torch.device) -> None:
        state = torch.load(self.out / CHECKPOINT, map_location=device)
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.best, self.elapsed = state["epoch"], state["best"], state["elapsed"]
        log.info("%s: resuming after epoch %d (%.1f min spent, best %.4f)", self.spec, self.epoch,
                 self.elapsed / 60, self.best)  # fmt: skip


CHECKPOINT = "checkpoint.pt"


def _runs(args: argparse.Namespace, device: torch.device) -> list[Run]:
    """One Run per `--net` (default: `default-w<width>`); several nets write to `--out/<spec>/`."""
    specs = args.net or [f"default-w{args.width}"]
    if args.init_from and len(specs) > 1:
        raise ValueError("--init-from warm-starts one network; give one --net with it")
    return [Run(spec, Path(args.out) / spec if len(specs) > 1 else Path(args.out), device, args) for spec in specs]


def train_many(args: argparse.Namespace) -> dict[str, float]:
    """Train every `--net` side by side on the same augmented batches within `args.minutes`.

    One process and one batch for all of them: the teachers' forward pass and the augmentation
    are paid once per step, and small networks, which leave a GPU mostly idle one at a time, fill
    it together. Returns each network's best PublicTest accuracy (float32).
    """
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
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
    if args.val_limit:
        val_x, val_y = val_x[: args.val_limit], val_y[: args.val_limit]

    if args.teacher and args.teacher_probs:
        raise ValueError("--teacher runs the teachers on every batch, --teacher-probs reads their outputs: one of them")
    if args.mixup and args.teacher_probs:
        raise ValueError("--mixup blends images the precomputed --teacher-probs never saw: use --teacher with it")
    precomputed = None
    if args.teacher_probs:
        precomputed = torch.from_numpy(load_teacher_probs(args.teacher_probs, data["train_y"], args.temperature))
        precomputed = precomputed[:limit].to(device)
        log.info("teacher outputs from %s (T %.1f, alpha %.2f)", args.teacher_probs, args.temperature, args.alpha)
    teachers = load_teachers(args.teacher, device)
    if teachers:
        each = [predict(net, val_x) for _, net in teachers]
        for (name, _), p in zip(teachers, each, strict=True):
            log.info("teacher %s: PublicTest %.4f", name, score(p, val_y)[1])
        log.info("teacher ensemble of %d: PublicTest %.4f (alpha %.2f, T %.1f)", len(teachers),
                 score(torch.stack(each).mean(0), val_y)[1], args.alpha, args.temperature)  # fmt: skip
    runs = _runs(args, device)
    for run in runs:
        if run.init_from:
            log.info(
                "%s: warm start from %s: PublicTest %.4f", run.spec, run.init_from, evaluate(run.net, val_x, val_y)[1]
            )
        log.info("%s: %d parameters", run.spec, sum(p.numel() for p in run.net.parameters()))
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log.info("torch %s on %s: %d training rows, batch %d, %.1f min, %d net(s), %d teacher(s)",
             torch.__version__, where, limit, args.batch_size, args.minutes, len(runs), len(teachers))  # fmt: skip

    budget, steps = args.minutes * 60, max(limit // args.batch_size, 1)
    # a resumed run continues its schedule where its checkpoint left it (the slowest net's clock)
    spent, epoch = max(run.elapsed for run in runs), min(run.epoch for run in runs)
    started, epoch_seconds, lr = time.monotonic() - spent, 0.0, 0.0
    while epoch < args.max_epochs and (time.monotonic() - started) + epoch_seconds < budget:
        epoch_started = time.monotonic()
        order = torch.randperm(limit, device=device)
        for run in runs:
            run.net.train()
            run.loss_sum, run.correct = torch.zeros((), device=device), torch.zeros((), device=device)
        for step in range(steps):
            lr = learning_rate(time.monotonic() - started, budget, args.warmup_minutes * 60, args.learning_rate)
            index = order[step * args.batch_size : (step + 1) * args.batch_size]
            images, target = augment(train_x[index]), targets[index]
            if args.mixup:
                images, target = mix(images, target, args.mixup)
            if device.type == "cuda" or args.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            soft = (
                precomputed[index]
                if precomputed is not None
                else teacher_probabilities(teachers, images, args.temperature, args.bfloat16)
            )
            for run in runs:
                for group in run.optimizer.param_groups:
                    group["lr"] = lr
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bfloat16):
                    logits = run.net(images)
                loss = distillation_loss(logits, target, soft, args.alpha, args.temperature)
                run.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                run.optimizer.step()
                run.loss_sum += loss.detach()
                run.correct += (logits.argmax(1) == target.argmax(1)).sum()
            if epoch == 0 and step == 19:
                log.info("first 20 steps: %.3f s a step", (time.monotonic() - epoch_started) / 20)
        epoch += 1
        for run in runs:
            # with mixup, the network is judged (and saved) with statistics of faces, not of blends
            judged = recalibrate_batch_norm(run.net, train_x) if args.mixup else run.net
            val_loss, val_accuracy = evaluate(judged, val_x, val_y)
            row = [epoch, round(time.monotonic() - started, 1), lr, run.loss_sum.item() / steps,
                   run.correct.item() / (steps * args.batch_size), val_loss, val_accuracy]  # fmt: skip
            run.writer.writerow(row)
            run.history.flush()
            if val_accuracy > run.best:
                run.best = val_accuracy
                _save(run.out / "best.npz", to_keras_arrays(judged), epoch=epoch, val_accuracy=val_accuracy,
                      net=run.spec)  # fmt: skip
            if args.checkpoint:
                run.epoch = epoch
                run.checkpoint(time.monotonic() - started)
            log.info("%s epoch %d lr %.4f loss %.4f acc %.4f val_acc %.4f best %.4f",
                     run.spec, epoch, lr, row[3], row[4], val_accuracy, run.best)  # fmt: skip
        epoch_seconds = time.monotonic() - epoch_started
        log.info("epoch %d took %.1fs", epoch, epoch_seconds)
    for run in runs:
        run.history.close()
        if args.save_last:
            last = recalibrate_batch_norm(run.net, train_x) if args.mixup else run.net
            _save(run.out / "last.npz", to_keras_arrays(last), epoch=epoch, net=run.spec)
        log.info("finished %s: %d epochs in %.1f min, best PublicTest %.4f",
                 run.spec, epoch, (time.monotonic() - started) / 60, run.best)  # fmt: skip
    return {run.spec: run.best for run in runs}


def train(args: argparse.Namespace) -> float:
    """One run (or several side by side) within `args.minutes`; returns the best PublicTest accuracy."""
    return max(train_many(args).values())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="from `classroom_training pack` (.npz.xz or .npz)")
    parser.add_argument(
        "--out", type=Path, required=True, help="folder for best.npz, history.csv (per net with several)"
    )
    parser.add_argument("--minutes", type=float, default=7.0, help="wall-clock budget for the whole run")
    parser.add_argument("--max-epochs", type=int, default=10_000)
    parser.add_argument("--warmup-minutes", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.05, help="peak learning rate")
    parser.add_argument("--width", type=int, default=32, help="without --net: the default network's width")
    parser.add_argument(
        "--net", action="append", default=[],
        help="default-w<width> or <plain|separable>-w<width>-d<depth>, repeatable: trained side by side",
    )  # fmt: skip
    parser.add_argument(
        "--teacher", action="append", default=[],
        help="SPEC=PATH of named weights (e.g. default-w32=.gpu/v5-named.npz), repeatable: the distillation ensemble",
    )  # fmt: skip
    parser.add_argument(
        "--teacher-probs", type=Path,
        help="teacher outputs computed once (teacher_probs.py) instead of a teacher forward pass per step",
    )  # fmt: skip
    parser.add_argument("--checkpoint", action="store_true", help="write checkpoint.pt every epoch (for --resume)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint.pt where there is one")
    parser.add_argument(
        "--channels-last", action="store_true",
        help="NHWC on the CPU too (always on a GPU); with bfloat16, 1.5-3x faster steps on an AVX512-BF16 CPU",
    )  # fmt: skip
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (CPU); 0: torch's default")
    parser.add_argument("--alpha", type=float, default=0.7, help="share of the distillation term (with teachers)")
    parser.add_argument("--temperature", type=float, default=4.0, help="softening of teacher and student logits")
    parser.add_argument("--val-limit", type=int, default=0, help="use only the first N PublicTest rows (smoke runs)")
    parser.add_argument("--save-last", action="store_true", help="also write last.npz (the last epoch's weights)")
    parser.add_argument("--ferplus-weight", type=float, default=0.3)
    parser.add_argument(
        "--mixup", type=float, default=0.0,
        help="Beta concentration of mixup (0: off); use with --teacher, which then labels each blend",
    )  # fmt: skip
    parser.add_argument("--init-from", type=Path, help="Keras-named weights (.npz) to start from")
    parser.add_argument("--init-dir", type=Path, help="warm-start each --net from <dir>/<spec>/best.npz if there")
    parser.add_argument("--float32", dest="bfloat16", action="store_false", help="no bfloat16 autocast")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N training rows (smoke runs)")
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--device", default="auto")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    train_many(parse_args(argv))


if __name__ == "__main__":
    main()
