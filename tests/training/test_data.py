"""The FER2013 loader: splits by Usage, shapes, and a clear error naming the bad row."""

import gzip

import numpy as np
import pytest
from classroom_training.cli import main as train_cli
from classroom_training.data import DatasetError, class_counts, load_fer2013, parse_csv

from tests.support.procs import REPO

SAMPLE = REPO / "data" / "fer2013_sample.csv.gz"
GOOD_PIXELS = " ".join(["128"] * 2304)


def test_sample_splits_by_usage_with_fer2013_shapes():
    splits = load_fer2013(SAMPLE, use_cache=False)
    assert set(splits) == {"Training", "PublicTest"}
    assert splits["Training"].images.shape == (280, 48, 48, 1)
    assert splits["Training"].images.dtype.name == "uint8"
    assert list(class_counts(splits["PublicTest"])) == [10] * 7


def test_the_parse_cache_goes_to_the_user_cache_not_the_source_tree(tmp_path, monkeypatch):
    """Issue #18: library code never writes into the repository; XDG_CACHE_HOME (or CLASSROOM_CACHE_DIR) decides."""
    monkeypatch.delenv("CLASSROOM_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    csv_path = tmp_path / "fer.csv.gz"
    csv_path.write_bytes(SAMPLE.read_bytes())
    first = load_fer2013(csv_path)
    cached = list((tmp_path / "xdg" / "classroom-training").glob("fer2013-*.npz"))
    assert len(cached) == 1
    again = load_fer2013(csv_path)  # read back from the cache
    assert np.array_equal(first["PublicTest"].images, again["PublicTest"].images)
    monkeypatch.setenv("CLASSROOM_CACHE_DIR", str(tmp_path / "own"))
    load_fer2013(csv_path)
    assert len(list((tmp_path / "own").glob("fer2013-*.npz"))) == 1


def test_plain_csv_path_is_accepted(tmp_path):
    plain = tmp_path / "fer2013.csv"
    plain.write_bytes(gzip.decompress(SAMPLE.read_bytes()))
    assert len(parse_csv(plain)["Training"]) == 280


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("emotion,Usage\n0,Training\n", "missing column(s) pixels"),
        (
            f"emotion,pixels,Usage\n3,{GOOD_PIXELS},Training\n9,{GOOD_PIXELS},Training\n",
            "line 3: unknown emotion label 9",
        ),
        ("emotion,pixels,Usage\n3,1 2 3,Training\n", "line 2: expected 2304 pixels (48x48), got 3"),
        (f"emotion,pixels,Usage\n3,{GOOD_PIXELS},Validation\n", "line 2: unknown Usage 'Validation'"),
        ("emotion,pixels,Usage\nx,1,Training\n", "line 2: emotion 'x' is not an integer"),
        ("emotion,pixels,Usage\n3,1 2 x,Training\n", "line 2: pixels must be space-separated integers"),
    ],
)
def test_bad_csv_names_the_row_and_problem(tmp_path, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_csv(bad)


def test_cli_needs_training_and_publictest_rows(tmp_path, capsys):
    only_training = tmp_path / "train_only.csv"
    only_training.write_text(f"emotion,pixels,Usage\n3,{GOOD_PIXELS},Training\n")
    assert train_cli(["train", "--csv", str(only_training), "--run-dir", str(tmp_path / "run")]) == 2
    assert "no rows with Usage PublicTest" in capsys.readouterr().err


def test_cli_reports_bad_csv_in_one_line_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    code = train_cli(["train", "--csv", str(bad), "--run-dir", str(tmp_path / "run"), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "line 2" in err and "\n" not in err


def test_soft_targets_blend_the_label_with_the_crowd_votes():
    from classroom_training.data import soft_targets

    labels = np.array([3, 0])
    votes = np.array([[0, 0, 0, 6, 0, 2, 2], [0, 0, 0, 0, 0, 0, 0]], np.float32)  # no votes: one-hot kept
    targets = soft_targets(labels, votes, 0.3)
    np.testing.assert_allclose(targets[0], [0, 0, 0, 0.7 + 0.18, 0, 0.06, 0.06], atol=1e-6)
    np.testing.assert_allclose(targets[1], [1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-6)
    assert (targets.argmax(axis=1) == labels).all()  # the FER2013 label keeps the most weight
