"""Import OpenCV once, quietly: its own warnings (e.g. "can't open camera by index") would otherwise
spill several lines onto the terminal next to the agent's one-line messages. Everything in the
package imports cv2 from here. Set OPENCV_LOG_LEVEL=INFO (or WARNING) to see them again."""

import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # ffmpeg's AV_LOG_QUIET

import cv2  # noqa: E402

# One OpenCV thread: the agent runs beside the student's own work, and at 2 samples/s latency does
# not matter, total CPU does. Measured with Haar at 640x480: 7.9 vs 9.0 ms of CPU per frame.
cv2.setNumThreads(int(os.environ.get("CLASSROOM_CV_THREADS", "1")))

__all__ = ["cv2"]
