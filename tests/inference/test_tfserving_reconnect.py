"""After TF Serving comes back, the worker's next call reaches it at once, not after gRPC's backoff.

A gRPC channel whose connection failed keeps failing every call at once (UNAVAILABLE) until its
reconnect backoff runs out, up to 5 s here. Before `TFServingPredictor` replaced such a channel,
jobs sent in that window failed although TF Serving was up again (the soak and the requeue test
both saw it). The stand-in TF Serving is a real gRPC server with TF Serving's official protos.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from classroom_inference.predictor import PredictorUnavailable, TFServingPredictor

from tests.support.inference import fer_faces
from tests.support.procs import free_port
from tests.support.tfserving_server import FakeTFServing

pytestmark = pytest.mark.slow


def test_predictor_reaches_a_restarted_tf_serving_with_its_first_call():
    """Three outages of 1-3 s; after each restart, one try (no retry) must already get through.

    Measured on the old, reused channel: 23-174 calls failed at once over 0.3-1.8 s after the
    restart. Each outage here keeps failing calls going, as a busy worker does, so that a reused
    channel would be in its backoff when TF Serving returns.
    """
    server = FakeTFServing(free_port()).start()
    predictor = TFServingPredictor(server.address, timeout_s=5, attempts=1)
    crops = fer_faces(2)
    try:
        before = predictor.predict(crops)
        for outage_s in (1, 2, 3):
            server.stop()
            down_until = time.monotonic() + outage_s
            while time.monotonic() < down_until:
                with pytest.raises(PredictorUnavailable):
                    predictor.predict(crops)
                time.sleep(0.05)
            server.start()
            np.testing.assert_allclose(predictor.predict(crops), before, atol=1e-6)
    finally:
        predictor.close()
        server.stop()
