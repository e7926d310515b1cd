"""`surgtui export-model` and `surgtui predict` on its files, on the session's trained run (tests/trained_run.py).

One module fixture exports three files from a copy of the run: ONNX through the real CLI (the
default path beside best.pt), TorchScript and a --dynamic --nms ONNX in process (same engine
function, no extra torch start-up). Every file must compute what the checkpoint does: the raw
decoded outputs through onnxruntime / torch.jit against the PyTorch model, the NMS graph
against predict's detections, and `surgtui predict` on the .onnx against predict on best.pt.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import surgtui
from conftest import one_line_error
from conftest import surgtui as run_cli
from trained_run import FRAMES, HEIGHT, WIDTH, TrainedRun, trained_run  # noqa: F401

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

PARITY = re.compile(r"max \|Δ\| boxes (\S+) px \(.*\), scores (\S+) \(limit")


@dataclass(frozen=True)
class Exports:
    run_dir: Path  # a copy of the trained run (exports land beside its weights)
    frames: list[Path]  # the 8 training frames (160x90)
    onnx: Path  # static, written by the CLI at its default path
    onnx_stdout: str
    torchscript: Path  # static, default path
    nms: Path  # ONNX, --dynamic --nms
    ts_stdout: str


@pytest.fixture(scope="module")
def exports(
    trained_run: TrainedRun,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Exports:
    from surgtui.engine.export import export_model

    runs = tmp_path_factory.mktemp("export-runs")
    run_dir = runs / trained_run.run_dir.name
    (run_dir / "weights").mkdir(parents=True)
    for name in ("run.json", "config.toml", "events.jsonl"):
        shutil.copy(trained_run.run_dir / name, run_dir / name)
    shutil.copy(trained_run.run_dir / "weights" / "best.pt", run_dir / "weights" / "best.pt")

    r = run_cli("export-model", run_dir.name[:15], "--format", "onnx", "--runs-dir", str(runs))
    assert r.returncode == 0, r.stderr
    out = tmp_path_factory.mktemp("exports")
    ts_out = _captured(lambda: export_model(str(run_dir), "torchscript"))
    export_model(str(run_dir / "weights" / "best.pt"), "onnx", out / "nms.onnx", dynamic=True, nms=True)
    frames = sorted((trained_run.data / "images" / "train").glob("*.jpg"))
    assert len(frames) == FRAMES
    return Exports(
        run_dir,
        frames,
        run_dir / "weights" / "best.onnx",
        r.stdout,
        run_dir / "weights" / "best.torchscript",
        out / "nms.onnx",
        ts_out,
    )


def _captured(call: Callable[[], object]) -> str:
    """What `call` prints."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        call()
    return buf.getvalue()


def letterboxed(frames: list[Path]) -> tuple[np.ndarray, list[tuple[float, int, int]]]:
    """The frames as the exported graph takes them ([B, 3, 96, 160] float32 0..1), and (scale, pad_x, pad_y)."""
    from surgtui.engine.transforms import letterbox

    canvases, geometry = [], []
    for path in frames:
        canvas, scale, pad_x, pad_y, _ = letterbox(path, 160, rect=True)
        canvases.append(np.asarray(canvas))
        geometry.append((scale, pad_x, pad_y))
    return np.ascontiguousarray(np.stack(canvases).transpose(0, 3, 1, 2), np.float32) / 255, geometry


def pytorch_decoded(weights: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What an export must compute, from the checkpoint: boxes, objectness x best class probability, class."""
    from surgtui.engine.inference import load_model

    model, _, _ = load_model(weights, torch.device("cpu"))
    with torch.inference_mode():
        preds = model.decode(model(torch.from_numpy(x)))
    best, classes = preds[..., 5:].max(-1)
    return preds[..., :4].numpy(), (preds[..., 4] * best).numpy(), classes.numpy()


@pytest.fixture(scope="module")
def checkpoint_predictions(exports: Exports, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    """predict (in this process) with best.pt on the trained frames at the exports' thresholds."""
    from surgtui.engine.predict import predict

    folder = tmp_path_factory.mktemp("frames")
    for path in exports.frames:
        shutil.copy(path, folder / path.name)
    out = tmp_path_factory.mktemp("pred-pt")
    sidecar = json.loads(Path(f"{exports.nms}.json").read_text())
    doc = predict(
        str(exports.run_dir / "weights" / "best.pt"), folder, out, sidecar["conf"], sidecar["iou"], "cpu"
    )
    return doc, out


# ---------------------------------------------------------------- the files and their parity


@pytest.mark.slow
def test_both_formats_export_with_parity_and_a_sidecar(exports: Exports) -> None:
    for stdout in (exports.onnx_stdout, exports.ts_stdout):
        boxes, scores = map(float, PARITY.search(stdout).groups())
        assert boxes <= 1e-4 and scores <= 1e-4, stdout
    assert "onnxruntime" in exports.onnx_stdout and "torch.jit" in exports.ts_stdout
    for path, fmt in ((exports.onnx, "onnx"), (exports.torchscript, "torchscript")):
        side = json.loads(Path(f"{path}.json").read_text())
        assert side["format"] == fmt and side["classes"] == ["needle", "needle_driver"]
        assert side["img_size"] == 160 and side["input"]["shape"] == [1, 3, 96, 160]  # 160x90 frames, rect
        assert side["letterbox"] == {
            "mode": "rect", "size": 160, "stride": 32, "pad_value": 114, "centred": True, "canvas": [160, 96]
        }  # fmt: skip
        assert side["mean"] == [0.485, 0.456, 0.406] and side["std"] == [0.229, 0.224, 0.225]
        assert (side["dynamic"], side["half"], side["nms"]) == (False, False, False)
        assert (side["conf"], side["iou"], side["max_det"]) == (0.25, 0.6, 300)  # the checkpoint's [val]
        assert side["weights"] == str((exports.run_dir / "weights" / "best.pt").resolve())
        assert side["epoch"] >= 1 and side["surgtui_version"] == surgtui.__version__
        assert side["parity"]["boxes_px"] <= 1e-4 and side["parity"]["scores"] <= 1e-4
    assert not list(exports.onnx.parent.glob(".*tmp-*"))  # written through temp files, none left


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_exported_graphs_compute_what_the_checkpoint_does(exports: Exports) -> None:
    x, _ = letterboxed(exports.frames[:2])
    ref_boxes, ref_scores, ref_classes = pytorch_decoded(exports.run_dir / "weights" / "best.pt", x)
    session = ort.InferenceSession(str(exports.onnx), providers=["CPUExecutionProvider"])
    traced = torch.jit.load(str(exports.torchscript))
    for i in range(len(x)):  # the static files take one image
        onnx_out = session.run(None, {"images": x[i : i + 1]})
        with torch.inference_mode(), torch.jit.optimized_execution(False):  # no slow first-run compiling
            ts_out = [t.numpy() for t in traced(torch.from_numpy(x[i : i + 1]))]
        for boxes, scores, classes in (onnx_out, ts_out):
            assert boxes.shape == ref_boxes[i : i + 1].shape
            assert np.abs(boxes - ref_boxes[i : i + 1]).max() <= 1e-4
            assert np.abs(scores - ref_scores[i : i + 1]).max() <= 1e-4
            confident = ref_scores[i : i + 1] > 0.01
            assert confident.any() and (classes[confident] == ref_classes[i : i + 1][confident]).all()


@pytest.mark.slow
def test_dynamic_export_takes_two_batch_sizes(exports: Exports) -> None:
    x, _ = letterboxed(exports.frames[:3])
    session = ort.InferenceSession(str(exports.nms), providers=["CPUExecutionProvider"])
    one = session.run(None, {"images": x[:1]})
    three = session.run(None, {"images": x})
    assert [o.shape[0] for o in one] == [1] * 4 and [o.shape[0] for o in three] == [3] * 4
    assert one[0].shape == (1, 300, 4) and three[1].shape == (3, 300)
    assert one[3][0] == three[3][0] > 0
    n = int(one[3][0])
    np.testing.assert_allclose(one[0][0, :n], three[0][0, :n], atol=1e-3)


@pytest.mark.slow
def test_nms_export_gives_predicts_detections(
    exports: Exports, checkpoint_predictions: tuple[dict, Path]
) -> None:
    doc, _ = checkpoint_predictions
    x, geometry = letterboxed(exports.frames)
    boxes, scores, classes, num = ort.InferenceSession(str(exports.nms)).run(None, {"images": x})
    assert num.sum() == len(doc["annotations"]) > 0
    for i, (path, (scale, pad_x, pad_y)) in enumerate(zip(exports.frames, geometry)):
        mine = [a for a in doc["annotations"] if a["file_name"] == path.name]  # best first, as the graph's
        n = int(num[i])
        assert n == len(mine)
        assert np.all(scores[i, n:] == 0) and np.all(classes[i, n:] == -1)
        b = (boxes[i, :n] - [pad_x, pad_y, pad_x, pad_y]) / scale  # back in the frame's pixels, clipped
        b = b.clip(0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
        xywh = np.c_[b[:, :2], b[:, 2:] - b[:, :2]]
        np.testing.assert_allclose(xywh, [a["bbox"] for a in mine], atol=0.01)  # bbox has 2 decimals
        np.testing.assert_allclose(scores[i, :n], [a["score"] for a in mine], atol=1e-5)
        assert classes[i, :n].tolist() == [a["category_id"] - 1 for a in mine]


# ---------------------------------------------------------------- predict on an exported file


@pytest.mark.slow
def test_predict_on_the_onnx_file_matches_predict_on_best_pt(
    exports: Exports, checkpoint_predictions: tuple[dict, Path], tmp_path: Path
) -> None:
    ref, ref_out = checkpoint_predictions
    folder = Path(ref["info"]["source"])
    out = tmp_path / "pred"
    r = run_cli(
        "predict", str(exports.onnx), str(folder), "--out", str(out), "--conf", str(ref["info"]["conf"]),
        "--iou", str(ref["info"]["iou"]),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "predictions.json").read_text())
    assert doc["info"]["export"]["format"] == "onnx" and doc["info"]["epoch"] == ref["info"]["epoch"]
    assert doc["images"] == ref["images"] and len(doc["annotations"]) == len(ref["annotations"]) > 0
    for a, b in zip(doc["annotations"], ref["annotations"]):
        assert (a["file_name"], a["category_id"]) == (b["file_name"], b["category_id"])
        # Rounded to 2 decimals: a 1e-5 px difference may still move the last digit.
        assert np.abs(np.subtract(a["bbox"], b["bbox"])).max() <= 0.01 + 1e-9
        assert abs(a["score"] - b["score"]) <= 1e-3
    for path in exports.frames:  # the drawn copies: the same boxes drawn
        with Image.open(out / path.name) as mine, Image.open(ref_out / path.name) as theirs:
            assert np.abs(np.asarray(mine, int) - np.asarray(theirs, int)).mean() < 0.5


@pytest.mark.slow
def test_a_torchscript_pt_is_told_from_a_checkpoint(exports: Exports, tmp_path: Path) -> None:
    from surgtui.runs.exports import exported_format

    copy = tmp_path / "model.pt"
    shutil.copy(exports.torchscript, copy)
    assert exported_format(copy) == "torchscript"
    assert exported_format(exports.run_dir / "weights" / "best.pt") is None
    assert exported_format(exports.onnx) == "onnx"


# ---------------------------------------------------------------- refusals: one line, exit 2


@pytest.mark.slow
def test_missing_sidecar_and_bad_options_are_one_line(exports: Exports, tmp_path: Path) -> None:
    alone = tmp_path / "alone.onnx"
    shutil.copy(exports.onnx, alone)
    line = one_line_error(
        run_cli("predict", str(alone), str(exports.frames[0]), "--out", str(tmp_path / "o"))
    )
    assert f"{alone}.json: no such file" in line
    weights = str(exports.run_dir / "weights" / "best.pt")
    line = one_line_error(
        run_cli("export-model", weights, "--format", "onnx", "--out", str(tmp_path / "m.bin"))
    )
    assert "--out" in line and ".onnx" in line
    line = one_line_error(run_cli("export-model", weights, "--format", "tflite"))
    assert "--format 'tflite'" in line and "onnx or torchscript" in line


@pytest.mark.slow
def test_half_needs_cuda_and_onnx_needs_the_extra(
    exports: Exports, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from surgtui.engine.export import main
    from surgtui.errors import UserError
    from surgtui.runs.inference import check_model_file

    weights = str(exports.run_dir / "weights" / "best.pt")
    if not torch.cuda.is_available():
        assert main([weights, "--format", "torchscript", "--half"]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("surgtui: error: --half:") and "CUDA" in line
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed: importing it fails
    assert main([weights, "--format", "onnx", "--out", str(exports.onnx.with_name("x.onnx"))]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "onnxruntime" in line and "pip install 'surgtui[export]'" in line
    with pytest.raises(UserError, match=re.escape("pip install 'surgtui[export]'")):
        check_model_file(exports.onnx)  # predict's check before the engine starts
    assert not exports.onnx.with_name("x.onnx").exists()
