"""`surgtui export-model RUN|WEIGHTS --format onnx|torchscript`: check the arguments, then start the engine module.

Only typer at import time, and no torch ever (the CLI never loads it): the options, the weights
file (a torch archive), an ONNX export's optional packages are checked here with one line and
exit 2; `python -m surgtui.engine.export` exports, checks parity and writes (docs/predict.md, "Export").
"""

from __future__ import annotations

from pathlib import Path

import typer

from surgtui.cli.options import RunsDirOpt


def export_model_command(
    weights: str = typer.Argument(
        ..., metavar="RUN|WEIGHTS", help="A run (its best.pt, else last.pt) or a checkpoint file."
    ),
    format_: str = typer.Option(..., "--format", "-f", help="onnx or torchscript."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="The file to write [default: beside the weights, best.onnx / best.torchscript].",
    ),
    dynamic: bool = typer.Option(
        False, "--dynamic", help="Any batch size and canvas (else 1 image, fixed size)."
    ),
    half: bool = typer.Option(False, "--half", help="Float16 weights (needs a CUDA GPU)."),
    nms: bool = typer.Option(False, "--nms", help="Per-class NMS inside: detections padded to max_det."),
    img_size: int | None = typer.Option(
        None, "--img-size", metavar="N", help="Letterbox size [the checkpoint's model.img_size]."
    ),
    conf: float | None = typer.Option(
        None, "--conf", help="With --nms: minimum score [the checkpoint's val.working_conf]."
    ),
    iou: float | None = typer.Option(
        None, "--iou", help="With --nms: NMS IoU [the checkpoint's val.iou_thres]."
    ),
    runs_dir: Path | None = RunsDirOpt,
) -> None:
    """Export a trained detector with its decode step to ONNX or TorchScript, checked against PyTorch.

    Writes the file and a JSON sidecar beside it (classes, input size, letterbox, thresholds);
    `surgtui predict` accepts the file (docs/predict.md, "Export").
    """
    from surgtui.cli.predict import run_engine
    from surgtui.runs.exports import check_export_args, check_onnx_packages
    from surgtui.runs.inference import check_weights_file, resolve_weights

    check_export_args(format_, out, img_size, conf, iou)
    path = check_weights_file(resolve_weights(weights, runs_dir))
    if format_ == "onnx":
        check_onnx_packages("--format onnx")
    args = [str(path), "--format", format_] + (["--out", str(out)] if out is not None else [])
    flags = {"--dynamic": dynamic, "--half": half, "--nms": nms}
    args += [flag for flag, on in flags.items() if on]
    for option, value in (("--img-size", img_size), ("--conf", conf), ("--iou", iou)):
        args += [option, repr(value)] if value is not None else []
    raise typer.Exit(run_engine("export", args))
