"""Face detection and the crop that leaves the laptop.

One interface (`Detector.detect(frame_bgr) -> list[Face]`), two detectors:

- `haar`: OpenCV's frontal-face Haar cascade (ships inside opencv-python-headless; no landmarks);
- `yunet`: YuNet (libfacedetection) compiled into the `yuface` wheel; gives 5 landmarks, from which
  head yaw/pitch are estimated. Wheels exist for Linux x86_64 and Windows (CPython <= 3.11) only.

Both detect on a copy of the frame downscaled to `work_width` pixels wide (320 by default): a
student's face in a laptop webcam is large, and this makes detection 5-10x cheaper.

The crop: the detected box is turned into a square FER2013-like face box (FER2013 faces are fairly
tight, brow to chin), calibrated per detector on real FER faces placed in frames (see
bench/capture_cpu.py and tests/capture/test_detector.py), padded by edge replication when it leaves
the frame, converted to grayscale and resized to 48x48 uint8. Several faces: the largest is the
student; all are counted.
"""

from __future__ import annotations

import ctypes
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_contract import CROP_SIZE

from classroom_capture.cvsetup import cv2

#: Chosen by measurement (bench/capture_cpu.py): see README "Choosing the detector".
DEFAULT_DETECTOR = "yunet"
FALLBACK_DETECTOR = "haar"


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x, y, w, h in frame pixels
    score: float
    #: (5, 2) frame pixels: right eye, left eye, nose tip, right mouth corner, left mouth corner
    #: ("right" = the person's right = image left); None for detectors without landmarks.
    landmarks: np.ndarray | None = None

    @property
    def area(self) -> float:
        return self.box[2] * self.box[3]


@dataclass(frozen=True)
class CropGeometry:
    """Square crop box from a detector box: side = scale * max(w, h), centre shifted by (dx, dy) * side of box."""

    scale: float = 1.0
    dx: float = 0.0
    dy: float = 0.0

    def square(self, box: tuple[float, float, float, float]) -> tuple[float, float, float]:
        x, y, w, h = box
        size = max(w, h)
        cx = x + w / 2 + self.dx * size
        cy = y + h / 2 + self.dy * size
        return cx, cy, self.scale * size


class Detector:
    name = "base"
    geometry = CropGeometry()

    def __init__(self, work_width: int = 320):
        self.work_width = work_width

    def _downscale(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = frame.shape[:2]
        if self.work_width and width > self.work_width:
            factor = self.work_width / width
            small = cv2.resize(frame, (self.work_width, round(height * factor)), interpolation=cv2.INTER_AREA)
            return small, factor
        return frame, 1.0

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        raise NotImplementedError


class HaarDetector(Detector):
    name = "haar"
    # Median placed-FER-box / Haar-box side over the 350-face sample: 1.03, centres agree (< 0.5%).
    geometry = CropGeometry(scale=1.03)

    # 240 px rather than 320: measured ~40% less CPU (12.5% -> 7.3% of a core at 2 samples/s) for
    # 61 instead of 63 of 100 FER faces found (bench/capture_cpu.py --work-widths 240,320).
    # Smallest face 20% of the frame height (96 px at 480): a student at a laptop fills 30-45%;
    # skipping the smaller scales cut detection CPU from 7.9 to 5.3 ms/frame, the same 61/100 found.
    def __init__(
        self, work_width: int = 240, min_face_frac: float = 0.2, scale_factor: float = 1.1, neighbors: int = 5
    ):
        super().__init__(work_width)
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise RuntimeError(f"could not load the Haar cascade {path}")
        self.min_face_frac, self.scale_factor, self.neighbors = min_face_frac, scale_factor, neighbors

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        small, factor = self._downscale(frame_bgr)
        gray = small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        gray = cv2.equalizeHist(gray)
        min_side = max(20, int(self.min_face_frac * min(gray.shape[:2])))
        boxes = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.neighbors, minSize=(min_side, min_side)
        )
        return [Face(tuple(float(v) / factor for v in box), 1.0) for box in boxes]


def _limit_openmp_threads(module_dir: Path) -> None:
    """yuface's bundled libgomp spins one busy thread per core; on a laptop (and next to anything
    else) one thread is faster: measured 100 ms vs 350-440 ms per 640x480 frame on a busy 2-core box."""
    libs = module_dir.parent / "yuface.libs"
    for lib in sorted(libs.glob("libgomp*.so*")) if libs.is_dir() else []:
        try:
            ctypes.CDLL(str(lib)).omp_set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
        except (OSError, AttributeError, ValueError):
            pass


def _import_yuface():
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # read by libgomp when it loads
    import yuface
    from yuface.yuface import detect  # the C function: (N, 16) int16 rows, no Python filtering

    _limit_openmp_threads(Path(yuface.__file__).parent)
    return detect


class YuNetDetector(Detector):
    name = "yunet"
    # YuNet's box already matches FER's framing: median side ratio 0.99, centres within 1%.
    geometry = CropGeometry(scale=0.99)

    def __init__(self, work_width: int = 320, min_score: float = 0.6):
        super().__init__(work_width)
        try:
            self._detect = _import_yuface()
        except ImportError as exc:
            raise RuntimeError(
                f"the yunet detector needs the yuface wheel (Linux x86_64 / Windows, Python <= 3.11): {exc}"
            ) from None
        self.min_score = min_score

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        small, factor = self._downscale(frame_bgr)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        rows = self._detect(np.ascontiguousarray(small))
        faces = []
        for row in np.asarray(rows, dtype=np.float64):
            score = row[0] / 100.0
            if score < self.min_score or row[3] <= 0 or row[4] <= 0:
                continue
            box = tuple(row[1:5] / factor)
            landmarks = row[5:15].reshape(5, 2) / factor
            faces.append(Face(box, score, landmarks))
        return faces


DETECTORS: dict[str, type[Detector]] = {"haar": HaarDetector, "yunet": YuNetDetector}


def yunet_available() -> bool:
    try:
        _import_yuface()
    except ImportError:
        return False
    return True


def make_detector(name: str = "auto", **kwargs) -> Detector:
    """A detector by name; "auto" is the measured default, or Haar where yuface has no wheel."""
    if name == "auto":
        name = DEFAULT_DETECTOR if DEFAULT_DETECTOR != "yunet" or yunet_available() else FALLBACK_DETECTOR
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)} or auto") from None
    return cls(**kwargs)


# --- from a face to what is sent ------------------------------------------------------------------


def crop_face(image: np.ndarray, face: Face, geometry: CropGeometry) -> np.ndarray:
    """48x48 uint8 grayscale crop of `face`, padded by edge replication where it leaves the frame."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    cx, cy, side = geometry.square(face.box)
    side = max(side, 2.0)
    # An affine warp does crop + pad + resize in one pass; INTER_AREA-like smoothing comes from
    # blurring first when shrinking a lot, so a 200 px face does not alias down to 48 px.
    scale = CROP_SIZE / side
    if scale < 0.5:
        sigma = 0.5 / scale * 0.6
        gray = cv2.GaussianBlur(gray, (0, 0), sigma)
    matrix = np.array(
        [[scale, 0.0, CROP_SIZE / 2 - scale * cx], [0.0, scale, CROP_SIZE / 2 - scale * cy]], dtype=np.float64
    )
    crop = cv2.warpAffine(gray, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(crop, dtype=np.uint8)


#: Nose-tip depth in front of the eyes, in inter-ocular distances; and the neutral height of the
#: nose between the eye line (0) and the mouth line (1), with the eye-mouth height in nose depths.
_NOSE_DEPTH_PER_EYE_GAP = 0.55
_NEUTRAL_NOSE_HEIGHT = 0.56  # median over the FER sample as YuNet sees it (IQR 0.53-0.58)
_EYE_MOUTH_PER_NOSE_DEPTH = 2.0


def head_pose(landmarks: np.ndarray) -> tuple[float, float]:
    """Rough head yaw and pitch in degrees from 5 landmarks (a weak-perspective model, +-10 deg).

    yaw > 0: the face turns towards the image's right (the student's left); pitch > 0: the head
    tilts up. 0, 0 faces the camera. Good enough to tell "looking at the screen" from "turned away".
    """
    right_eye, left_eye, nose, mouth_r, mouth_l = np.asarray(landmarks, dtype=np.float64)
    eyes_mid = (right_eye + left_eye) / 2
    mouth_mid = (mouth_r + mouth_l) / 2
    eye_gap = float(np.linalg.norm(left_eye - right_eye))
    if eye_gap < 1e-3:
        return 0.0, 0.0
    # Work in the face's own frame: x along the eye line, y from eyes to mouth.
    axis_x = (left_eye - right_eye) / eye_gap
    axis_y = np.array([-axis_x[1], axis_x[0]])
    nose_off = nose - eyes_mid
    yaw = math.degrees(math.atan(float(nose_off @ axis_x) / eye_gap / _NOSE_DEPTH_PER_EYE_GAP))
    eye_mouth = float((mouth_mid - eyes_mid) @ axis_y)
    if eye_mouth < 1e-3:
        return round(yaw, 1), 0.0
    height = float(nose_off @ axis_y) / eye_mouth
    pitch = -math.degrees(math.atan((height - _NEUTRAL_NOSE_HEIGHT) * _EYE_MOUTH_PER_NOSE_DEPTH))
    return round(max(-90.0, min(90.0, yaw)), 1), round(max(-90.0, min(90.0, pitch)), 1)


@dataclass(frozen=True)
class FrameFacts:
    """What one sample yields: this, and only this, leaves the laptop."""

    face_count: int
    crop: np.ndarray | None  # (48, 48) uint8, the largest face
    head_yaw: float | None = None
    head_pitch: float | None = None
    face: Face | None = None  # stays local (debugging, tests)


def analyse(frame_bgr: np.ndarray, detector: Detector) -> FrameFacts:
    faces = detector.detect(frame_bgr)
    if not faces:
        return FrameFacts(0, None)
    student = max(faces, key=lambda f: f.area)
    crop = crop_face(frame_bgr, student, detector.geometry)
    yaw = pitch = None
    if student.landmarks is not None:
        yaw, pitch = head_pose(student.landmarks)
    return FrameFacts(len(faces), crop, yaw, pitch, student)
