"""Command line: `data prepare`, `train`, `predict`, and the internal `worker` used by core.runs."""

import argparse
import contextlib
import sys
import time
import warnings
from pathlib import Path

from core import runs
from core.base.errors import BadConfig, RunError, StudioError
from core.base.procs import EXIT_FAILED, EXIT_OK, EXIT_STOPPED, EXIT_USAGE, exit_code, leave, stop_on_signals
from core.base.runfiles import RUN_ID_WORDS, is_run_id
from core.data.fashion import dataset_status, prepare
from core.model.checkpoint import load_checkpoint
from core.model.networks import MODELS
from core.model.predict import predict
from core.runs import board, dispatch, launcher, queue
from core.runs.places import places_of
from core.runs.worker import work
from core.training import export, ranks
from core.training.config import LIMITS, OPTIMIZERS, PRESETS, TrainConfig, preset


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
            raise argparse.ArgumentTypeError(f"{_cut(text)} is not {kind}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{_cut(text)} must be {rule}")
        return value

    return parse


def _cut(text: str) -> str:
    """A typed value for an error line: 400 digits say no more than their first few and their count."""
    return repr(text) if len(text) <= 40 else f"{text[:12]!r}... ({len(text)} characters)"


_positive_int = _number(int, "a whole number", lambda v: v >= 1, "at least 1")


def _limited(field: str):
    """The argparse type of a TrainConfig field, with its own range (core.training.config.LIMITS)."""

    limit = LIMITS[field]
    if limit.whole:
        return _number(int, "a whole number", limit.allows, limit.describe())
    return _number(float, "a number", limit.allows, limit.describe())


def _run_folder(text: str) -> Path:
    """--run-dir: a new or empty folder (core.runs.create_run checks again when it makes the run)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty name is not a folder: name a new or empty folder")
    path = Path(text)
    if not is_run_id(path.name):  # the folder's name becomes the run's id (core.base.runfiles.RUN_ID)
        raise argparse.ArgumentTypeError(f"{_cut(path.name)} cannot name a run: use {RUN_ID_WORDS}")
    try:
        if path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text!r} is not a folder: name a new or empty folder")
        if path.is_dir() and any(path.iterdir()):
            raise argparse.ArgumentTypeError(f"{text!r} is not empty: a run goes into a new or empty folder")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} cannot be used: {exc.strerror or exc}") from None
    return path


def build_parser() -> argparse.ArgumentParser:

    parser = _Parser(prog="python -m core", description="FashionMNIST Studio engine")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="dataset commands")
    data.add_argument("action", choices=["prepare", "status"])
    data.add_argument("--no-download", action="store_true", help="never fall back to downloading")

    train = sub.add_parser("train", help="train a model and write a run directory")
    train.add_argument("--preset", choices=sorted(PRESETS), default="tutorial")
    train.add_argument("--model", choices=sorted(MODELS))
    train.add_argument("--epochs", type=_limited("epochs"))
    train.add_argument("--batch-size", type=_limited("batch_size"))
    train.add_argument("--lr", type=_limited("lr"))
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--momentum", type=_limited("momentum"))
    train.add_argument("--weight-decay", type=_limited("weight_decay"))
    train.add_argument("--seed", type=_limited("seed"))
    train.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps, ...")
    train.add_argument("--limit-batches", type=_limited("limit_batches"), help="training batches per epoch")
    train.add_argument("--run-dir", type=_run_folder, help="a new or empty folder (default data/runs/<id>)")
    train.add_argument(
        "--nproc",
        type=_limited("processes"),
        help="processes that train together on this machine (DistributedDataParallel): one per GPU, "
        "or up to the core count on a CPU; under torchrun, torchrun's own --nproc-per-node decides",
    )
    train.add_argument(
        "--no-wait",
        action="store_true",
        help="refuse at once when the device is busy, instead of waiting in the run queue (a --run-dir "
        "outside the store never waits)",
    )

    predict = sub.add_parser("predict", help="classify image files with a checkpoint")
    predict.add_argument("images", nargs="+", type=Path)
    predict.add_argument("--checkpoint", type=Path, required=True)
    predict.add_argument("-k", "--top", type=_positive_int, default=3)

    board = sub.add_parser(
        "tensorboard", help="write TensorBoard event files for runs made before runs wrote them"
    )
    board.add_argument("runs", nargs="*", help="run ids or run folders (default: every run of the store)")

    export = sub.add_parser("export", help="a run as a standalone training script or a Jupyter notebook")
    export.add_argument("run", help="a run id of the store, or a run folder")
    export.add_argument("--format", choices=["script", "notebook"], default="script")
    export.add_argument(
        "--output", type=Path, help="the file to write (default: train_<run id>.py/.ipynb here)"
    )

    worker = sub.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("run_dir", type=Path)
    worker.add_argument("--lock-fd", type=int, action="append", default=[])
    worker.add_argument("--init-from", type=Path)
    worker.add_argument("--nice", type=int)
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_warnings()
    args = build_parser().parse_args(argv)
    try:
        commands = {"data": _data, "train": _train, "predict": _predict, "worker": _worker,
                    "tensorboard": _tensorboard, "export": _export}  # fmt: skip
        return commands[args.command](args)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:  # a file or folder the command could not use: one line, as for our own errors
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_STOPPED


def _quiet_warnings() -> None:
    """Library warnings would break the one-line-per-result promise on stderr; -W or PYTHONWARNINGS
    (sys.warnoptions) still show them to whoever asks."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")


def _data(args) -> int:

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

    overrides = {f: getattr(args, f) for f in _TRAIN_FIELDS if getattr(args, f) is not None}
    if args.nproc is not None:
        if ranks.launched():
            raise BadConfig("torchrun started the processes already: leave out --nproc (use torchrun's own)")
        overrides["processes"] = args.nproc
    config = preset(args.preset, **overrides)
    if config.processes > 1 or ranks.launched():
        try:
            ranks.timeout_s()
        except BadConfig as exc:  # a setting as wrong as a bad argument: said before any run is made
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if ranks.launched():  # one rank of `torchrun ... -m core train`
        leave(exit_code(launcher.torchrun_train(config, args.run_dir, echo=print)))
    ranks.check_processes(config)
    if args.run_dir is None and not args.no_wait:
        directory, held = _wait_in_queue(config)
    else:
        directory, held = _take_places_now(config, args.run_dir or runs.store_root() / runs.new_run_id())
    with held:
        stop_on_signals(directory / runs.STOP_FILE)
        status = runs.run_worker(directory, echo=print)
    leave(exit_code(status))


def _take_places_now(config, directory: Path):
    """The run made in `directory` and its device places, held; RunError when the device is busy."""
    keys = runs.device_keys(config)  # the same places the dashboard's runs take
    with contextlib.ExitStack() as held:  # let go again if the run cannot be made
        held.enter_context(runs.device_lock(keys, places=places_of(config, keys, runs.store_root())))
        runs.create_run(config, directory)  # refuses a folder that holds anything: it is the user's
        return directory, held.pop_all()


def _wait_in_queue(config):
    """Queue the run in the store (core.runs.queue), say its place as it changes, and return (its folder,
    its device places, held) once its turn comes; Ctrl-C while waiting takes it out of the queue."""
    root = runs.store_root()
    directory = queue.enqueue(config, root, keeper=queue.CLI_KEEPER)
    said = None
    try:
        while (held := dispatch.take_turn(directory, root)) is None:
            dispatch.ensure_dispatcher(root)  # the runs ahead of it are started by the dispatcher
            place = queue.place_in_queue(directory.name, root)
            words = f"waiting: {place.words} (Ctrl-C to leave the queue)" if place else None
            if words and words != said:
                print(words, flush=True)
                said = words
            time.sleep(dispatch.DISPATCH_EVERY_S)
    except BaseException:
        with contextlib.suppress(StudioError):
            queue.cancel(directory.name, root)
        raise
    print(f"run {directory.name}: its turn, training now", flush=True)
    return directory, held


def _predict(args) -> int:

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


def _run_folder_of(text: str) -> Path:
    """A run named on the command line: a run folder, or the id of a run of the store; RunError if neither."""
    path = Path(text)
    if (path / "config.json").is_file():
        return path
    if is_run_id(text) and (runs.store_root() / text / "config.json").is_file():
        return runs.store_root() / text
    raise RunError(f"{_cut(text)} is neither a run folder nor a run of the store {runs.store_root()}")


def _tensorboard(args) -> int:
    """Event files for every run named (default: every run of the store) that lacks them, from its rows."""
    folders = [_run_folder_of(name) for name in args.runs] or [r.dir for r in runs.list_runs()]
    for folder in folders:
        if board.backfill(folder):
            print(f"{folder.name}: event files written")
        else:
            print(f"{folder.name}: {board.why_not(folder)}")
    print(f"open them with: tensorboard --logdir {runs.store_root() if not args.runs else folders[0].parent}")
    return EXIT_OK


def _export(args) -> int:
    """A run's config as the Train page exports it: the same script or notebook, byte for byte."""
    folder = _run_folder_of(args.run)
    config = runs.read_config(folder)
    if not isinstance(config, TrainConfig):
        raise RunError(f"run {folder.name} is an optimizer race: only a training run exports as a script")
    source = f"run {folder.name}"
    if args.format == "notebook":
        text, name = export.notebook(config, source), export.notebook_name(folder.name)
    else:
        text, name = export.script(config, source), export.file_name(folder.name)
    output = args.output or Path(name)
    output.write_text(text)
    print(f"wrote {output}")
    return EXIT_OK


def _worker(args) -> int:

    leave(work(args.run_dir, lock_fds=args.lock_fd, init_from=args.init_from, nice=args.nice))
