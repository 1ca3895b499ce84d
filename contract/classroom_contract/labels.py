"""Emotion labels in FER2013's own order: index i of a model output is EMOTIONS[i]."""

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_EMOTIONS = len(EMOTIONS)

#: Side of the square grayscale face crop that leaves a laptop and enters the model.
CROP_SIZE = 48
