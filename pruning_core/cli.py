"""The command line for a practitioner with a table: ``python -m pruning_core prune-mlp``.

``python -m pruning_core prune-mlp data.csv --target y --C 1 --out pruned.pt`` reads the table,
prepares it as the NEON study prepares its tables (:func:`~pruning_core.prepare_table`: split
into train / reward / stop / test, imputed, scaled and one-hot encoded on the training rows),
trains an MLP on it (or loads one with ``--model``), prunes its hidden neurons with the shipped
NEON agent (:func:`~pruning_core.prune_mlp`), prints the report and the test accuracy before and
after, and writes the pruned network to ``--out``. The checkpoint holds plain values and tensors
only (``torch.load(path, weights_only=True)`` reads it; :func:`load_mlp` rebuilds the network);
its inputs are the prepared features, named in ``feature_names``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pruning_core.data.tabular import prepare_table
from pruning_core.methods.neon import prune_mlp
from pruning_core.models.mlp import MLP, MLPSpec, build_mlp
from pruning_core.train.loop import TrainConfig, evaluate, fit

__all__ = ["CHECKPOINT_FORMAT", "load_mlp", "main", "save_mlp"]


CHECKPOINT_FORMAT = "pruning_core/mlp-v1"
"""The ``format`` entry of the checkpoints this command writes and reads."""


def save_mlp(path: str | Path, model: MLP, **extra: Any) -> Path:
    """Write ``model`` as ``{"format", "spec", "state_dict", **extra}`` (plain values, tensors)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": CHECKPOINT_FORMAT, "spec": asdict(model.spec()),
                "state_dict": model.state_dict(), **extra}, path)  # fmt: skip
    return path


def load_mlp(path: str | Path) -> tuple[MLP, dict[str, Any]]:
    """The network of a checkpoint :func:`save_mlp` wrote (eval mode), and the whole checkpoint."""
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path} is not a checkpoint of `python -m pruning_core prune-mlp` (no format "
            f"{CHECKPOINT_FORMAT!r}); write one with --out or --save-dense"
        )
    spec = {k: tuple(v) if isinstance(v, list) else v for k, v in blob["spec"].items()}
    model = MLP(MLPSpec(**spec))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), blob


def _names(text: str | None) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()] if text else []


def _read_table(path: Path, sep: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"no such table: {path}")
    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    return pd.read_csv(path, sep=sep)


def _accuracy(model: torch.nn.Module, data: tuple[torch.Tensor, torch.Tensor]) -> float:
    return evaluate(model, data, batch_size=None)["top1"]


def prune_mlp_command(args: argparse.Namespace) -> dict[str, Any]:
    """Run ``prune-mlp``; returns what it printed as numbers (for tests and scripts)."""
    table = Path(args.table)
    frame = _read_table(table, args.sep)
    data = prepare_table(
        frame, args.target, name=table.stem, seed=args.seed, drop=_names(args.drop),
        categorical=_names(args.categorical), keep_duplicates=args.keep_duplicates,
    )  # fmt: skip
    sizes = ", ".join(f"{s} {data.n(s)}" for s in ("train", "reward", "stop", "test"))
    print(f"{table.name}: {data.n_features} features, {data.num_classes} classes "
          f"({', '.join(data.classes)}); rows: {sizes}")  # fmt: skip
    train, reward, stop, test = (data.tensors(s) for s in ("train", "reward", "stop", "test"))
    if args.model:
        model, _ = load_mlp(args.model)
        n_in, n_out = model.spec().n_features, model.spec().n_classes
        if (n_in, n_out) != (data.n_features, data.num_classes):
            raise ValueError(
                f"{args.model} takes {n_in} features to {n_out} classes; the prepared table has "
                f"{data.n_features} features and {data.num_classes} classes"
            )
        print(f"loaded {args.model}: hidden widths {list(model.spec().hidden)}")
    else:
        hidden = tuple(int(w) for w in _names(args.hidden))
        n = len(hidden)
        spec = MLPSpec(data.n_features, data.num_classes, hidden, ("relu",) * n, (False,) * n,
                       (0.0,) * n)  # fmt: skip
        model = build_mlp(spec, seed=args.seed)
        t0 = time.perf_counter()
        fit(model, train, TrainConfig.mlp(epochs=args.epochs, seed=args.seed), val_data=stop)
        print(f"trained an MLP, hidden widths {list(hidden)}, in {time.perf_counter() - t0:.1f} s "
              "(Adam, early stopping on the stop split)")  # fmt: skip
        if args.save_dense:
            save_mlp(args.save_dense, model, feature_names=data.meta["feature_names"],
                     classes=list(data.classes), target=args.target)  # fmt: skip
    small, report = prune_mlp(model, *train, *reward, C=args.C, passes=args.passes,
                              seed=args.seed, X_stop=stop[0], y_stop=stop[1])  # fmt: skip
    before, after = _accuracy(model, test), _accuracy(small, test)
    print(report.summary())
    print(f"  test accuracy   {100 * before:.2f}% -> {100 * after:.2f}% "
          f"({100 * (after - before):+.2f} pt, {data.n('test')} rows)")  # fmt: skip
    if args.out:
        save_mlp(args.out, small, feature_names=data.meta["feature_names"],
                 classes=list(data.classes), target=args.target,
                 report=json.dumps(report, default=float))  # fmt: skip
        print(f"wrote {args.out} (read it with pruning_core.cli.load_mlp)")
    return {"test_acc_orig": before, "test_acc": after, "report": report}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m pruning_core``."""
    parser = argparse.ArgumentParser(prog="python -m pruning_core", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "prune-mlp", help="train (or load) an MLP on a table and prune its neurons with NEON",
        description=__doc__.split("\n\n")[1],
    )  # fmt: skip
    p.add_argument("table", help="a CSV (or .tsv) file with a header row")
    p.add_argument("--target", required=True, help="the column to predict (class labels)")
    p.add_argument("--C", type=float, default=1.0,
                   help="accuracy loss you accept, in percentage points (default 1)")  # fmt: skip
    p.add_argument("--out", help="write the pruned network here (.pt)")
    p.add_argument("--model", help="prune this network (a checkpoint of --out / --save-dense) "
                   "instead of training one")  # fmt: skip
    p.add_argument("--save-dense", help="also write the trained network here, before pruning")
    p.add_argument("--hidden", default="128,64", help="hidden widths of the trained MLP (default 128,64)")
    p.add_argument("--epochs", type=int, default=100, help="most training epochs (early stopping; default 100)")
    p.add_argument("--passes", type=int, default=4, help="NEON's visits of every hidden layer (default 4)")
    p.add_argument("--drop", help="columns to leave out, comma-separated (ids, leaks)")
    p.add_argument("--categorical", help="numeric columns to one-hot encode, comma-separated")
    p.add_argument("--keep-duplicates", action="store_true",
                   help="keep identical rows (they may then sit in train and test)")  # fmt: skip
    p.add_argument("--sep", help="column separator (default: ',' or tab for .tsv)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, training and pruning")
    p.set_defaults(run=prune_mlp_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; warnings and errors in the inputs are one line each
    (``warning: ...``, ``error: ...``, exit status 1), not tracebacks."""
    args = build_parser().parse_args(argv)

    def one_line(message: Warning | str, *_: object, **__: object) -> None:
        print(f"warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = one_line
        try:
            args.run(args)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            print(f"error: {msg}", file=sys.stderr)
            return 1
    return 0
