"""Realistic test frames made from real FER2013 faces (for the tests, the benchmarks and `classroom-demo`,
whose simulated students live in demo.py).

A FER2013 face (48x48 grayscale, a fairly tight face box) is upscaled to a webcam-sized face
(160-220 px by default), lightly tinted, and placed on a 640x480 frame with a lit wall, a torso and
sensor noise. Some frames carry no face (the student stepped away). The placed box is returned, so
tests can check what a detector finds against where the face really is.

The sample is a gzipped CSV `emotion,pixels,Usage` (pixels: 2,304 space-separated ints). Its path:
argument > $CLASSROOM_FER_SAMPLE > data/fer2013_sample.csv.gz of the working directory (a checkout's root).
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_contract import CROP_SIZE, EMOTIONS

from classroom_capture.cvsetup import cv2

SAMPLE_ENV = "CLASSROOM_FER_SAMPLE"
FRAME_SIZE = (640, 480)  # width, height
FACE_PX = (160, 220)


#: Where the sample is when neither an argument nor $CLASSROOM_FER_SAMPLE says: relative to the working
#: directory, i.e. a checkout's root (the Docker image sets CLASSROOM_FER_SAMPLE).
DEFAULT_SAMPLE = Path("data", "fer2013_sample.csv.gz")


def default_sample_path() -> Path:
    """$CLASSROOM_FER_SAMPLE, else DEFAULT_SAMPLE under the working directory."""
    env = os.environ.get(SAMPLE_ENV)
    return Path(env) if env else Path.cwd() / DEFAULT_SAMPLE


@dataclass(frozen=True)
class FerFaces:
    pixels: np.ndarray  # (N, 48, 48) uint8
    emotions: np.ndarray  # (N,) int, index into EMOTIONS

    def __len__(self) -> int:
        return len(self.pixels)


def load_fer_faces(path: str | os.PathLike | None = None) -> FerFaces:
    """All faces of a FER2013-format CSV (gzipped or not); FileNotFoundError names the path and the env var."""
    path = Path(path) if path is not None else default_sample_path()
    if not path.is_file():
        raise FileNotFoundError(f"FER2013 sample not found at {path} (set {SAMPLE_ENV} to its path)")
    opener = gzip.open if path.suffix == ".gz" else open
    faces, emotions = [], []
    with opener(path, "rt", newline="") as handle:
        for row in csv.DictReader(handle):
            pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            if pixels.size != CROP_SIZE * CROP_SIZE:
                continue
            faces.append(pixels.reshape(CROP_SIZE, CROP_SIZE))
            emotions.append(int(row["emotion"]))
    if not faces:
        raise ValueError(f"no 48x48 faces in {path}")
    return FerFaces(np.stack(faces), np.array(emotions, dtype=np.int64))


@dataclass(frozen=True)
class SyntheticFrame:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    box: tuple[int, int, int, int] | None  # x, y, w, h of the placed face; None when no face
    face_index: int | None
    emotion: str | None


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A lit wall (vertical gradient, random colour) with a darker torso: plain, slightly noisy."""
    wall = rng.uniform(90, 210, size=3)
    shade = np.linspace(1.08, 0.85, height)[:, None, None] * rng.uniform(0.9, 1.1, size=(1, width, 1)).mean()
    image = np.broadcast_to(wall, (height, width, 3)) * shade
    return np.clip(image, 0, 255).astype(np.float32)


def render_frame(
    rng: np.random.Generator,
    face: np.ndarray | None,
    size: tuple[int, int] = FRAME_SIZE,
    face_px: tuple[int, int] = FACE_PX,
    noise: float = 4.0,
    background: np.ndarray | None = None,
    noise_bank: list[np.ndarray] | None = None,
) -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
    """One BGR frame with `face` (48x48 uint8) upscaled and placed, or an empty scene when None.

    `background` (float32 HxWx3) fixes the room; `noise_bank` (float32 fields) replaces fresh noise:
    both make a frame ~3x cheaper, for simulated students that stream for hours.
    """
    width, height = size
    image = _background(rng, width, height) if background is None else background.copy()
    box = None
    if face is not None:
        side = int(rng.integers(face_px[0], face_px[1] + 1))
        cx = int(rng.uniform(0.35, 0.65) * width)
        cy = int(rng.uniform(0.35, 0.5) * height)
        x = int(np.clip(cx - side // 2, 0, width - side))
        y = int(np.clip(cy - side // 2, 0, height - side))
        # Shoulders under the face, so the face is not floating on a wall.
        torso = (int(rng.uniform(40, 90)),) * 3
        cv2.ellipse(image, (x + side // 2, y + int(side * 1.75)), (side, int(side * 0.9)), 0, 180, 360, torso, -1)
        big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
        tint = np.array([0.86, 0.95, 1.06], dtype=np.float32) * rng.uniform(0.95, 1.05)
        image[y : y + side, x : x + side] = big[:, :, None] * tint
        box = (x, y, side, side)
    if noise_bank:
        image += noise_bank[int(rng.integers(len(noise_bank)))]
    else:
        image += rng.standard_normal(size=image.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(image, 0, 255).astype(np.uint8), box


class FrameMaker:
    """Deterministic stream of synthetic frames from a FER sample; a fraction of them have no face."""

    def __init__(
        self,
        faces: FerFaces | None = None,
        seed: int = 0,
        no_face_ratio: float = 0.2,
        size: tuple[int, int] = FRAME_SIZE,
        face_px: tuple[int, int] = FACE_PX,
        hold: int = 1,
        fixed_scene: bool = False,
    ):
        """`hold`: samples an expression lasts; `fixed_scene`: one room (wall, light) for all frames,
        like one student's webcam, and pre-drawn sensor noise (cheaper)."""
        self.faces = faces if faces is not None else load_fer_faces()
        self.rng = np.random.default_rng(seed)
        self.no_face_ratio, self.size, self.face_px, self.hold = no_face_ratio, size, face_px, max(1, hold)
        self._background = self._noise = None
        if fixed_scene:
            width, height = size
            self._background = _background(self.rng, width, height)
            self._noise = [
                self.rng.standard_normal(size=(height, width, 3), dtype=np.float32) * np.float32(4.0) for _ in range(4)
            ]
        self._order = self.rng.permutation(len(self.faces))
        self._next = 0
        self._held: tuple[int | None, int] = (None, 0)

    def _pick(self) -> int | None:
        current, left = self._held
        if left > 0:
            self._held = (current, left - 1)
            return current
        if self.rng.random() < self.no_face_ratio:
            index = None
        else:
            index = int(self._order[self._next % len(self._order)])
            self._next += 1
        self._held = (index, self.hold - 1)
        return index

    def next(self) -> SyntheticFrame:
        index = self._pick()
        face = None if index is None else self.faces.pixels[index]
        image, box = render_frame(
            self.rng, face, self.size, self.face_px, background=self._background, noise_bank=self._noise
        )
        emotion = None if index is None else EMOTIONS[int(self.faces.emotions[index])]
        return SyntheticFrame(image, box, index, emotion)


def write_synthetic_frames(
    folder: str | os.PathLike,
    count: int,
    *,
    seed: int = 0,
    no_face_ratio: float = 0.2,
    sample_path: str | os.PathLike | None = None,
    size: tuple[int, int] = FRAME_SIZE,
    face_px: tuple[int, int] = FACE_PX,
) -> list[dict]:
    """Write `count` PNG frames (frame_00000.png, ...) into `folder` and a manifest.json beside them.

    Returns the manifest: one dict per frame, in file (= capture) order, with file, has_face, box
    [x, y, w, h] or None, face_index (row of the sample) and emotion (the FER label) or None.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    maker = FrameMaker(load_fer_faces(sample_path), seed=seed, no_face_ratio=no_face_ratio, size=size, face_px=face_px)
    manifest = []
    for i in range(count):
        frame = maker.next()
        name = f"frame_{i:05d}.png"
        if not cv2.imwrite(str(folder / name), frame.image):
            raise OSError(f"could not write {folder / name}")
        manifest.append(
            {
                "file": name,
                "has_face": frame.box is not None,
                "box": list(frame.box) if frame.box else None,
                "face_index": frame.face_index,
                "emotion": frame.emotion,
            }
        )
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest
