"""Import OpenCV once, quietly: its own warnings (e.g. "can't open camera by index") would otherwise
spill several lines onto the terminal next to the agent's one-line messages. Everything in the
package imports cv2 from here. Set OPENCV_LOG_LEVEL=INFO (or WARNING) to see them again."""

import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # ffmpeg's AV_LOG_QUIET

import cv2  # noqa: E402

__all__ = ["cv2"]
