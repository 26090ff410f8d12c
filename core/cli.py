"""Command line: `data prepare`, `train`, `predict`, and the internal `worker` used by core.runs."""

import argparse
import os
import signal
import sys
from pathlib import Path

from core.errors import StudioError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (exit 2) instead of the usage block."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _number(convert, kind: str, ok, rule: str):
    """An argparse type: `convert` the text, then check `ok(value)`; both fail with one plain line."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be {rule}")
        return value

    return parse


_positive_int = _number(int, "a whole number", lambda v: v >= 1, "at least 1")
_positive_float = _number(float, "a number", lambda v: v > 0, "above 0")
_nonneg_float = _number(float, "a number", lambda v: v >= 0, "zero or more")


def build_parser() -> argparse.ArgumentParser:
    from core.models import MODELS
    from core.train import OPTIMIZERS, PRESETS

    parser = _Parser(prog="python -m core", description="FashionMNIST Studio engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="dataset commands")
    data.add_argument("action", choices=["prepare", "status"])
    data.add_argument("--no-download", action="store_true", help="never fall back to downloading")

    train = sub.add_parser("train", help="train a model and write a run directory")
    train.add_argument("--preset", choices=sorted(PRESETS), default="tutorial")
    train.add_argument("--model", choices=sorted(MODELS))
    train.add_argument("--epochs", type=_positive_int)
    train.add_argument("--batch-size", type=_positive_int)
    train.add_argument("--lr", type=_positive_float)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--momentum", type=_nonneg_float)
    train.add_argument("--weight-decay", type=_nonneg_float)
    train.add_argument("--seed", type=int)
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps, ...")
    train.add_argument("--limit-batches", type=_positive_int, help="cap on training batches per epoch")
    train.add_argument("--run-dir", type=Path, help="where to write the run (default data/runs/<id>)")

    predict = sub.add_parser("predict", help="classify image files with a checkpoint")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--checkpoint", type=Path, required=True)
    predict.add_argument("-k", "--top", type=_positive_int, default=3)

    worker = sub.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("run_dir", type=Path)
    worker.add_argument("--lock-fd", type=int)
    worker.add_argument("--init-from", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return {"data": _data, "train": _train, "predict": _predict, "worker": _worker}[args.command](args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_STOPPED


def _data(args) -> int:
    from core.data import dataset_status, prepare

    if args.action == "status":
        status = dataset_status()
        print(status.message)
        return EXIT_OK if status.ready else EXIT_FAILED
    source = prepare(allow_download=not args.no_download, log=print)
    print(f"FashionMNIST ready (source: {source})")
    return EXIT_OK


_TRAIN_FIELDS = ("model", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "seed",
                 "device", "limit_batches")  # fmt: skip


def _train(args) -> int:
    from core import runs
    from core.train import preset

    overrides = {f: getattr(args, f) for f in _TRAIN_FIELDS if getattr(args, f) is not None}
    config = preset(args.preset, **overrides)
    directory = args.run_dir or runs.RUNS_DIR / runs.new_run_id()
    with runs.device_lock(runs.device_key(config)):  # the same lock the dashboard's runs take
        runs.create_run(config, directory)
        stop_on_signals(directory)
        status = runs.run_worker(directory, echo=print)
    return {"finished": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)


def _predict(args) -> int:
    from core.checkpoint import load_checkpoint
    from core.predict import predict

    model = load_checkpoint(args.checkpoint).model
    failures = 0
    for path in args.images:
        try:
            top = predict(model, path, k=args.top)
        except StudioError as exc:
            print(f"{path}: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}: " + ", ".join(f"{p.label} ({p.prob:.2f})" for p in top))
    return EXIT_FAILED if failures else EXIT_OK


def stop_on_signals(directory: Path) -> None:
    """Ctrl-C or SIGTERM become a cooperative stop: the epoch's batch ends and a checkpoint is saved."""
    from core.runs import STOP_FILE

    def request_stop(_signum, _frame):
        (directory / STOP_FILE).touch()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)


def _worker(args) -> int:
    from core import runs

    # The lock descriptor came from the parent; keeping it open keeps the device reserved.
    if args.lock_fd is not None:
        os.set_inheritable(args.lock_fd, False)
    stop_on_signals(args.run_dir)
    # A background job: once it trains, clicks in the dashboard get the CPU first.
    status = runs.run_worker(args.run_dir, init_from=args.init_from, echo=print, nice=runs.WORKER_NICE)
    return {"finished": EXIT_OK, "stopped": EXIT_STOPPED}.get(status, EXIT_FAILED)
