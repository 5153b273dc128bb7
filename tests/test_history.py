"""`acgan history`: both file formats, the safe unpickler, the table, JSON, the plot, the errors.

Every history here is written by the test itself, as the reference program (Keras 2,
numpy 1.x or 2.x, Python 2 or 3) or acgan's own trainer would have written it.
"""

from __future__ import annotations

import builtins
import collections
import json
import math
import os
import pathlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from acgan_cli import lossplot
from acgan_cli.cli import app
from tests.conftest import tensorflow_modules_after
from acgan_cli.history import load_history

runner = CliRunner()


# --- histories written the way the programs write them --------------------------------


def losses(epoch: int) -> dict[str, dict[str, list[float]]]:
    """Distinct numbers: generator test auxiliary loss is lowest at epoch 3, its total at epoch 1."""
    def triple(generation: float, auxiliary: float) -> list[float]:
        return [generation + auxiliary, generation, auxiliary]

    return {
        "train": {"generator": triple(0.8 + 0.1 * epoch, 0.30 / epoch), "discriminator": triple(0.6, 0.50 / epoch)},
        "test": {
            "generator": triple(0.9 + 0.3 * (epoch - 1), [0.40, 0.20, 0.125, 0.25][epoch - 1]),
            "discriminator": triple(0.65, 0.55 / epoch),
        },
    }


def write_json_history(path: Path, n: int = 4, **extra: object) -> Path:
    epochs = [{"epoch": e, "steps": 600, "seconds": 30.5, **losses(e)} for e in range(1, n + 1)]
    path.write_text(json.dumps({"format": "acgan-history/1", "columns": ["total", "generation", "auxiliary"],
                                "epochs": epochs, **extra}))
    return path


def reference_structure(n: int = 4) -> dict[str, collections.defaultdict]:
    """mnist_acgan.py's history: train entries np.mean(...) arrays, test entries evaluate()'s lists."""
    history = {"train": collections.defaultdict(list), "test": collections.defaultdict(list)}
    for e in range(1, n + 1):
        record = losses(e)
        for net in ("generator", "discriminator"):
            steps = np.array([record["train"][net]] * 3, dtype=np.float32)  # train_on_batch per step
            history["train"][net].append(np.mean(steps, axis=0))
            total, generation, auxiliary = record["test"][net]
            history["test"][net].append([total, np.float32(generation), np.float64(auxiliary)])
    return history


def write_reference_pickle(path: Path, n: int = 4, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    path.write_bytes(pickle.dumps(reference_structure(n), protocol=protocol))
    return path


def py2_pickle(n: int = 4) -> bytes:
    """What Python 2.7 + numpy 1.x wrote for the reference history: pickle protocol 0,
    py2 str for keys and raw array bytes, numpy.core.* names, __builtin__.list."""
    dtype = b"cnumpy\ndtype\n(S'f8'\nI0\nI1\ntR(I3\nS'<'\nNNNI-1\nI-1\nI0\ntb"

    def raw(data: bytes) -> bytes:
        return b"S'" + "".join(f"\\x{b:02x}" for b in data).encode() + b"'\n"

    def array(values: list[float]) -> bytes:
        return (b"cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(I0\ntS'b'\ntR(I1\n(I3\nt"
                + dtype + b"I00\n" + raw(np.array(values, "<f8").tobytes()) + b"tb")

    def scalar(value: float) -> bytes:
        return b"cnumpy.core.multiarray\nscalar\n(" + dtype + raw(np.float64(value).tobytes()) + b"tR"

    out = b"(d"
    for split in ("train", "test"):
        out += f"S'{split}'\n".encode() + b"ccollections\ndefaultdict\n(c__builtin__\nlist\ntR"
        for net in ("generator", "discriminator"):
            out += f"S'{net}'\n".encode() + b"(l"
            for e in range(1, n + 1):
                values = losses(e)[split][net]
                if split == "train":
                    out += array(values) + b"a"
                else:
                    out += b"(l" + b"".join(scalar(v) + b"a" for v in values) + b"a"
            out += b"s"
        out += b"s"
    return out + b"."


def invoke(*args: object):
    return runner.invoke(app, ["history", *map(str, args)])


def json_of(*args: object) -> dict:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith("Error: ") and "\n" not in message, message
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in message, message


def table_row(output: str, epoch: int) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.split()[:1] == [str(epoch)])


# --- the table --------------------------------------------------------------------------


def test_table_shows_every_epoch_with_all_twelve_losses_and_marks(tmp_path):
    path = write_json_history(tmp_path / "history.json")
    result = invoke(path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for label in ("generator train", "generator test", "discriminator train", "discriminator test"):
        assert label in out
    groups = [("generator", "train"), ("generator", "test"), ("discriminator", "train"), ("discriminator", "test")]
    expected = [f"{v:.3f}" for net, split in groups for v in losses(2)[split][net]]  # total, gen, aux each
    assert table_row(out, 2)[1:] == expected
    assert table_row(out, 3)[-1] == "best"  # lowest generator test auxiliary loss, 0.125
    assert table_row(out, 4)[-1] == "last"
    assert len(table_row(out, 1)) == 13  # unmarked
    assert "best: lowest generator test auxiliary loss" in out


def test_table_marks_one_epoch_as_both_best_and_last(tmp_path):
    result = invoke(write_json_history(tmp_path / "history.json", n=1))
    assert result.exit_code == 0, result.output
    assert table_row(result.stdout, 1)[-2:] == ["best,", "last"]


def test_directory_prefers_history_json_and_falls_back_to_the_pickle(tmp_path):
    write_json_history(tmp_path / "history.json", n=2)
    write_reference_pickle(tmp_path / "acgan-history.pkl", n=4)
    doc = json_of(tmp_path)
    assert doc["source"] == str(tmp_path / "history.json") and len(doc["epochs"]) == 2
    (tmp_path / "history.json").unlink()
    doc = json_of(tmp_path)
    assert doc["source"] == str(tmp_path / "acgan-history.pkl") and len(doc["epochs"]) == 4


def test_broken_history_json_in_a_directory_points_at_the_pickle(tmp_path):
    (tmp_path / "history.json").write_text("{")
    write_reference_pickle(tmp_path / "acgan-history.pkl")
    assert_one_line_error(invoke(tmp_path), "history.json is not valid JSON", "acgan-history.pkl is there too")


def test_narrow_terminal_gets_generation_and_auxiliary_only(tmp_path, monkeypatch):
    import io

    from rich.console import Console

    from acgan_cli import ui

    screen = io.StringIO()
    monkeypatch.setattr(ui, "console", Console(file=screen, force_terminal=True, color_system=None, width=80))
    ui.print_history(load_history(write_json_history(tmp_path / "history.json")))
    out = screen.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "G test" in out and "total" not in out.split("best:")[0]
    assert table_row(out, 2)[1:3] == [f"{v:.3f}" for v in losses(2)["train"]["generator"][1:]]
    assert "totals need" in out


# --- JSON ---------------------------------------------------------------------------------


def test_json_is_history_json_normalised_with_best_and_last(tmp_path):
    doc = json_of(write_json_history(tmp_path / "history.json"))
    assert doc["format"] == "acgan-history/1" and doc["columns"] == ["total", "generation", "auxiliary"]
    assert (doc["best_epoch"], doc["last_epoch"], doc["best_by"]) == (3, 4, "test.generator.auxiliary")
    assert doc["epochs"][2] == {"epoch": 3, "steps": 600, "seconds": 30.5, **losses(3)}


def test_json_output_reads_back_as_a_history(tmp_path):
    pkl = write_reference_pickle(tmp_path / "acgan-history.pkl")
    (tmp_path / "converted.json").write_text(invoke(pkl, "--json").stdout)
    assert json_of(tmp_path / "converted.json")["epochs"] == json_of(pkl)["epochs"]


def test_non_finite_losses_become_null_and_are_never_best(tmp_path):
    path = tmp_path / "history.json"
    write_json_history(path)
    text = path.read_text().replace("0.125", "NaN")  # Python's json writes a diverged loss so
    path.write_text(text)
    doc = json_of(path)
    assert doc["epochs"][2]["test"]["generator"][2] is None
    assert doc["best_epoch"] == 2
    table = invoke(path).stdout
    assert "nan" in table_row(table, 3)


# --- the reference pickle ---------------------------------------------------------------


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_reference_pickle_loads_with_every_protocol(tmp_path, protocol):
    doc = json_of(write_reference_pickle(tmp_path / "acgan-history.pkl", protocol=protocol))
    assert [e["epoch"] for e in doc["epochs"]] == [1, 2, 3, 4]
    assert doc["epochs"][1]["steps"] is None and doc["epochs"][1]["seconds"] is None
    for e, epoch in enumerate(doc["epochs"], start=1):
        for split in ("train", "test"):
            for net in ("generator", "discriminator"):
                assert epoch[split][net] == pytest.approx(losses(e)[split][net], rel=1e-6)
    assert doc["best_epoch"] == 3


def test_numpy_1_pickle_names_load(tmp_path):
    data = pickle.dumps(reference_structure(), protocol=2)
    assert b"numpy._core.multiarray" in data
    path = tmp_path / "acgan-history.pkl"
    path.write_bytes(data.replace(b"numpy._core.", b"numpy.core."))  # what numpy 1.x wrote
    assert json_of(path)["epochs"][0]["train"]["generator"] == pytest.approx(losses(1)["train"]["generator"])


def test_python_2_reference_pickle_loads(tmp_path):
    path = tmp_path / "acgan-history.pkl"
    path.write_bytes(py2_pickle())
    doc = json_of(path)
    assert [e["test"]["generator"] for e in doc["epochs"]] == [losses(e)["test"]["generator"] for e in range(1, 5)]
    assert [e["train"]["discriminator"] for e in doc["epochs"]] == [losses(e)["train"]["discriminator"] for e in range(1, 5)]


def test_pickle_with_another_name_is_recognised(tmp_path):
    doc = json_of(write_reference_pickle(tmp_path / "old-run.history", protocol=4))
    assert len(doc["epochs"]) == 4


# --- untrusted pickles ------------------------------------------------------------------


class Touch:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


class System:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class Exec:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.target)!r}, 'w').close()",))


@pytest.mark.parametrize(("payload", "wanted"), [
    (Touch, "pathlib.Path.touch"),
    (System, f"{os.system.__module__}.system"),
    (Exec, "builtins.exec"),
])
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, payload, wanted, protocol):
    if payload is Touch and protocol < 4:
        wanted = "builtins.getattr"  # how protocols below 4 name Path.touch: getattr(Path, "touch")
    target = tmp_path / "pwned"
    data = pickle.dumps({"train": {"generator": [payload(target)]}, "test": {}}, protocol=protocol)
    if payload is Touch:  # the payload is real: an ordinary unpickler runs it
        pickle.loads(data)
        assert target.exists()
        target.unlink()
    path = tmp_path / "acgan-history.pkl"
    path.write_bytes(data)
    result = invoke(path)
    assert_one_line_error(result, f"refusing to load {path}: it asks for {wanted}, which a history file never contains")
    assert not target.exists()


def test_codecs_other_than_latin1_are_refused(tmp_path):
    path = tmp_path / "acgan-history.pkl"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    assert_one_line_error(invoke(path), "refusing to load", "_codecs.encode with encoding 'rot13'")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "persistent id"])
def test_damaged_pickle_is_one_line_error(tmp_path, damage):
    path = tmp_path / "acgan-history.pkl"
    data = pickle.dumps(reference_structure(), protocol=4)
    damaged = {"truncated": data[: len(data) // 2], "garbage": b"\x80\x04\x95garbage\xff\xfe", "empty": b"",
               "persistent id": b"P1\n."}  # its error message spans two lines
    path.write_bytes(damaged[damage])
    assert_one_line_error(invoke(path), f"{path} is not a readable pickle", "truncated or damaged")


# --- structure errors ---------------------------------------------------------------------


def test_missing_path_and_empty_directory(tmp_path):
    assert_one_line_error(invoke(tmp_path / "nope"), "nope does not exist")
    assert_one_line_error(invoke(tmp_path), "has no history.json or acgan-history.pkl")


@pytest.mark.parametrize(("content", "fragment"), [
    ("{not json", "is not valid JSON: Expecting property name"),
    ("[1, 2]", "expected a JSON object, found a list of 2 items"),
    ('{"format": "acgan-run/1", "config": {}}', "has format 'acgan-run/1'"),
    ('{"format": "acgan-history/1"}', "its 'epochs' key is missing"),
])
def test_bad_json_is_one_line_error(tmp_path, content, fragment):
    path = tmp_path / "history.json"
    path.write_text(content)
    assert_one_line_error(invoke(path), fragment)


def test_non_utf8_json_is_one_line_error(tmp_path):
    path = tmp_path / "history.json"
    path.write_bytes(b"\xff\xfe{}")
    assert_one_line_error(invoke(path), "is not JSON: it is not UTF-8 text")


def test_json_structure_error_names_the_key(tmp_path):
    path = write_json_history(tmp_path / "history.json")
    doc = json.loads(path.read_text())
    doc["epochs"][1]["test"]["generator"] = [1.0, 2.0]
    path.write_text(json.dumps(doc))
    assert_one_line_error(invoke(path), "epochs[1].test.generator must be 3 numbers", "found a list of 2 items")
    del doc["epochs"][1]["test"]
    path.write_text(json.dumps(doc))
    assert_one_line_error(invoke(path), "epochs[1].test is missing")


def test_pickle_structure_errors_name_the_key(tmp_path):
    path = tmp_path / "acgan-history.pkl"
    history = reference_structure()
    del history["test"]
    path.write_bytes(pickle.dumps(history))
    assert_one_line_error(invoke(path), "key 'test' is missing")
    history = reference_structure()
    history["test"]["discriminator"].pop()
    path.write_bytes(pickle.dumps(history))
    assert_one_line_error(invoke(path), "test.discriminator 3")
    history = reference_structure()
    history["train"]["generator"][2] = np.zeros((2, 3))
    path.write_bytes(pickle.dumps(history))
    assert_one_line_error(invoke(path), "train.generator[2] must be 3 numbers", "an array of shape (2, 3)")


def test_missing_top_level_key_is_named(tmp_path):
    path = tmp_path / "acgan-history.pkl"
    path.write_bytes(pickle.dumps(collections.defaultdict(list, {"test": {}})))
    assert_one_line_error(invoke(path), "key 'train' is missing or not a dict")


@pytest.mark.parametrize("kind", ["json", "pickle"])
def test_empty_history_says_so(tmp_path, kind):
    if kind == "json":
        path = write_json_history(tmp_path / "history.json", n=0)
    else:
        path = write_reference_pickle(tmp_path / "acgan-history.pkl", n=0)
    assert_one_line_error(invoke(path), "holds no epochs yet")


# --- best ---------------------------------------------------------------------------------


def test_best_is_lowest_generator_test_auxiliary_not_total(tmp_path):
    history = load_history(write_json_history(tmp_path / "history.json"))
    totals = history.series("test", "generator", "total")
    assert totals.index(min(totals)) == 0  # the total would pick epoch 1
    assert history.best.number == 3 and history.last.number == 4


# --- the plot -------------------------------------------------------------------------------


def test_plot_is_a_drawn_png_of_the_documented_size(tmp_path):
    target = tmp_path / "out" / "losses.png"
    result = invoke(write_reference_pickle(tmp_path / "acgan-history.pkl"), "--plot", target)
    assert result.exit_code == 0, result.output
    assert f"Wrote the loss plot to {target}" in result.stdout
    assert "generator test" in result.stdout  # the table too
    with Image.open(target) as image:
        assert image.format == "PNG" and image.size == (lossplot.WIDTH, lossplot.HEIGHT)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    assert (pixels == 255).all(axis=1).mean() > 0.5  # mostly white paper
    assert len(np.unique(pixels, axis=0)) > 50  # text, curves, anti-aliasing
    for colour in ((31, 119, 180), (255, 127, 14)):  # generator blue, discriminator orange
        assert (np.abs(pixels - colour).sum(axis=1) < 30).sum() > 500
    assert not list(target.parent.glob(".*tmp*"))  # the atomic write left nothing behind


def test_plot_with_json_keeps_stdout_pure(tmp_path):
    target = tmp_path / "losses.png"
    result = invoke(write_json_history(tmp_path / "history.json"), "--json", "--plot", target)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["last_epoch"] == 4
    assert "Wrote the loss plot" in result.stderr and target.is_file()


def test_plot_of_one_epoch_with_missing_losses(tmp_path):
    path = write_json_history(tmp_path / "history.json", n=1)
    doc = json.loads(path.read_text())
    doc["epochs"][0]["train"]["generator"] = [float("nan"), None, 0.3]  # NaN as Python's json writes it
    path.write_text(json.dumps(doc))
    history = load_history(path)
    assert math.isnan(history.epochs[0].train["generator"].total)
    assert math.isnan(history.epochs[0].train["generator"].generation)
    image = lossplot.draw_loss_plot(history)
    assert image.size == (lossplot.WIDTH, lossplot.HEIGHT)


def test_plot_with_an_unknown_suffix_is_refused_before_any_work(tmp_path):
    target = tmp_path / "losses.svg"
    result = invoke(tmp_path / "missing.json", "--plot", target)
    assert_one_line_error(result, "give a file name ending in .png")
    assert not target.exists()


# --- no TensorFlow ----------------------------------------------------------------------------


def test_history_never_imports_tensorflow(tmp_path):
    pkl = write_reference_pickle(tmp_path / "acgan-history.pkl")
    plot = ["history", str(pkl), "--plot", str(tmp_path / "p.png")]
    assert tensorflow_modules_after((plot, 0), (["history", str(pkl), "--json"], 0)) == []
