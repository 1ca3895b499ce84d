"""Capture agent: samples a student's webcam, keeps only a 48x48 face crop and a few facts per
sample, and sends them in batches to the classroom API. Frames never leave the laptop."""

__version__ = "0.1.0"
