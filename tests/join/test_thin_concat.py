"""The page replaces tfjs-wasm's Concat kernel for thin inputs (src/detect.js useThinConcat: face-api's
normalize() made 160,000 typed-array views a sample with tfjs's own): it must give numpy's concatenate
on every shape, thin or not (those go to tfjs's kernel), float and int, with empty inputs too."""

from __future__ import annotations

import numpy as np

from tests.support.join import needs_browser

pytestmark = needs_browser

CASES = [
    ([[1, 6, 5, 1], [1, 6, 5, 1], [1, 6, 5, 1]], 3, "float32"),  # normalize()'s case
    ([[2, 3, 2], [2, 3, 1], [2, 3, 4]], 2, "float32"),
    ([[3, 2], [3, 17]], 1, "float32"),  # wider than THIN: tfjs's kernel
    ([[2, 4, 3], [2, 1, 3]], 1, "int32"),
    ([[4, 1], [4, 0], [4, 2]], 1, "float32"),  # an empty input
    ([[2, 3], [5, 3]], 0, "float32"),  # the outer axis
    ([[2, 2, 2], [2, 2, 2]], -1, "int32"),
]

SCRIPT = """async (cases) => {
  await benchInit();
  const kernel = tf.getKernel("Concat", "wasm");
  const out = [];
  for (const [shapes, axis, dtype] of cases) {
    const inputs = shapes.map((shape, n) => {
      const size = shape.reduce((a, b) => a * b, 1);
      return tf.tensor(Array.from({ length: size }, (_, i) => n * 1000 + i * 1.5), shape, dtype);
    });
    const result = tf.concat(inputs, axis);
    out.push({ inputs: inputs.map((t) => t.arraySync()), result: result.arraySync(), shape: result.shape });
    tf.dispose([...inputs, result]);
  }
  return { thin: Boolean(kernel.thin), backend: tf.getBackend(), out };
}"""


def test_the_thin_concat_kernel_is_numpys_concatenate(bench_site, chromium):
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    result = page.evaluate(SCRIPT, CASES)
    page.close()
    assert result["backend"] == "wasm" and result["thin"]
    for (shapes, axis, dtype), got in zip(CASES, result["out"], strict=True):
        inputs = [np.array(a, dtype=dtype).reshape(shape) for a, shape in zip(got["inputs"], shapes, strict=True)]
        expected = np.concatenate(inputs, axis=axis)
        assert list(expected.shape) == got["shape"], (shapes, axis)
        assert np.array_equal(np.array(got["result"], dtype=dtype).reshape(expected.shape), expected), (shapes, axis)
