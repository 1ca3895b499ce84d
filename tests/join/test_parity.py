"""Parity of the browser page's detector and crop with the Python agent, on the same frames, in
headless Chromium (tests/support/parity.py: the frames, the comparison and the floors, shared with
tests/join/test_firefox.py). Measured figures are printed; the floors are what was measured on this
machine less a margin.
"""

from __future__ import annotations

import pytest

from tests.support.join import needs_browser
from tests.support.parity import compare_with_agent, place_frames

pytestmark = needs_browser


@pytest.fixture(scope="module")
def placed(bench_site):
    """FER faces placed in frames and empty frames, as PNG files on the bench site."""
    return place_frames(bench_site[1])


def test_browser_finds_the_same_faces_and_the_model_reads_the_same_emotions(
    bench_site, chromium, placed, local_predictor
):
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    assert page.evaluate("benchInit()") == "wasm"
    parity = compare_with_agent(lambda url: page.evaluate("u => benchDetect(u)", url), placed, local_predictor)
    page.close()
    print(parity.summary("chromium"))
    parity.assert_the_agents()
