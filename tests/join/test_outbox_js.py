"""The page's IndexedDB outbox (services/capture-web/src/outbox.js) in real Chromium: bounded with the
oldest dropped (and counted), oldest first, one student's entries never handed out for another."""

from __future__ import annotations

from tests.support.join import needs_browser

pytestmark = needs_browser

SCRIPT = """async () => {
  const box = await Outbox.open(5);
  const obs = (t) => ({ observation_id: crypto.randomUUID(), captured_at: t, face_count: 0 });
  let dropped = 0;
  for (let t = 0; t < 8; t += 1) dropped += await box.put("c/ada", obs(t));
  await box.put("c/bob", obs(100));  // full again: drops ada's oldest
  const ada = await box.oldest("c/ada", 64);
  const bob = await box.oldest("c/bob", 64);
  await box.remove(ada.slice(0, 2).map((e) => e.seq));
  return {
    dropped, counted: box.dropped,
    ada: ada.map((e) => e.observation.captured_at), bob: bob.map((e) => e.observation.captured_at),
    left: await box.count("c/ada"), total: await box.count(),
    again: (await box.oldest("c/ada", 2)).map((e) => e.observation.captured_at),
  };
}"""


def test_outbox_is_bounded_drops_the_oldest_and_keeps_students_apart(bench_site, chromium):
    base, _ = bench_site
    page = chromium.new_page()
    page.goto(f"{base}/bench.html")
    result = page.evaluate(SCRIPT)
    page.close()
    assert result["dropped"] == 3 and result["counted"] == 4
    assert result["ada"] == [4, 5, 6, 7] and result["bob"] == [100]
    assert result["left"] == 2 and result["total"] == 3
    assert result["again"] == [6, 7]
