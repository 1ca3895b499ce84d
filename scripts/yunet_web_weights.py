"""Build-time only: the /join page's YuNet weights (services/capture-web/models/yunet/) from the
agent's shipped ONNX (services/capture/classroom_capture/yunet/), so the page and the agent run the
same network with the same float32 weights.

    python scripts/yunet_web_weights.py            # (re)write the files
    python scripts/yunet_web_weights.py --check    # exit 1 unless the committed files are current

Why a committed output: the Docker join-page stage builds the page with Node only, and Node cannot
read ONNX without a protobuf dependency. The files written:
- yunet.bin: every convolution's weight and bias, float32 little-endian, in tfjs layouts
  (conv2d filter [kh, kw, in, out], depthwise filter [3, 3, channels, 1]), in the ONNX's order;
- yunet.json: name, shape and byte offset of each tensor, the ONNX's sha256 and the .bin's;
- LICENSE (libfacedetection's BSD-3-Clause, the agent's copy) and SHA256SUMS.
tests/join/test_yunet_web.py checks the .bin against the ONNX tensor by tensor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
ONNX_DIR = REPO / "services/capture/classroom_capture/yunet"
ONNX_NAME = "yunet_yuface_2023.5.1.onnx"
WEB_DIR = REPO / "services/capture-web/models/yunet"


def onnx_tensors(path: Path) -> list[tuple[str, np.ndarray]]:
    """The ONNX's convolution weights and biases (name, float32 array in ONNX layout), graph order."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return [
        (t.name, numpy_helper.to_array(t)) for t in model.graph.initializer if t.name.endswith((".weight", ".bias"))
    ]


def tfjs_layout(name: str, array: np.ndarray) -> np.ndarray:
    """ONNX Conv weights (out, in/group, kh, kw) as tfjs filters: [kh, kw, in, out] for a full
    convolution, [kh, kw, channels, 1] for a depthwise one (its ONNX shape is (channels, 1, kh, kw))."""
    if name.endswith(".bias"):
        return array.astype("<f4")
    if name.removesuffix(".weight").endswith("_dw"):
        return np.ascontiguousarray(array.transpose(2, 3, 0, 1), "<f4")
    return np.ascontiguousarray(array.transpose(2, 3, 1, 0), "<f4")


def build(onnx_path: Path) -> tuple[bytes, dict]:
    """(yunet.bin bytes, yunet.json dict) for the ONNX at `onnx_path`."""
    blob = bytearray()
    entries = []
    for name, array in onnx_tensors(onnx_path):
        data = tfjs_layout(name, array)
        entries.append({"name": name, "shape": list(data.shape), "offset": len(blob)})
        blob += data.tobytes()
    manifest = {
        "model": "YuNet (libfacedetection v3, BSD-3-Clause), weights from the yuface 2023.5.1 wheel",
        "source": ONNX_NAME,
        "source_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "weights": "yunet.bin",
        "weights_sha256": hashlib.sha256(blob).hexdigest(),
        "dtype": "float32",
        "tensors": entries,
    }
    return bytes(blob), manifest


def expected_files(onnx_dir: Path = ONNX_DIR) -> dict[str, bytes]:
    blob, manifest = build(onnx_dir / ONNX_NAME)
    tensors = ",\n  ".join(json.dumps(t) for t in manifest["tensors"])  # one tensor a line
    text = json.dumps({**manifest, "tensors": []}, indent=1).replace('"tensors": []', f'"tensors": [\n  {tensors}\n ]')
    text += "\n"
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in (("yunet.bin", blob),))
    return {
        "yunet.bin": blob,
        "yunet.json": text.encode(),
        "SHA256SUMS": sums.encode(),
        "LICENSE": (onnx_dir / "LICENSE").read_bytes(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    parser.add_argument("--out", type=Path, default=WEB_DIR)
    args = parser.parse_args(argv)
    files = expected_files()
    if args.check:
        stale = [n for n, data in files.items() if not (args.out / n).is_file() or (args.out / n).read_bytes() != data]
        print(f"stale: {', '.join(stale)}" if stale else f"{args.out}: current")
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    print(f"wrote {args.out}: yunet.bin {len(files['yunet.bin'])} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
