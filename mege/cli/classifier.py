"""``mege classifier train|show``: the Stacked MNIST digit classifier (:mod:`mege.metrics.classifier`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mege.errors import MegeError
from mege.metrics.classifier import DEFAULT_PATH, REFERENCE_PATH, load_classifier, train_classifier


def main(argv: list[str]) -> int:
    """``mege classifier train [--out PATH] [--seed S] …``: train a digit classifier (the defaults
    reproduce the committed reference bit for bit on CPU); ``mege classifier show [PATH]``: print a
    classifier's card and content hash."""
    parser = argparse.ArgumentParser(prog="mege classifier", description=main.__doc__)
    parser.add_argument("action", choices=["train", "show"])
    parser.add_argument("path", nargs="?", default=None, help="show: classifier file (default: the reference)")
    parser.add_argument("--out", default=str(DEFAULT_PATH), help="train: output file (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default=None, help="MNIST folder (default: $MEGE_DATA_DIR or the usual places)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--splits", nargs="+", default=["test"], choices=["train", "test"],
                        help="MNIST splits to read (default: test, the reference recipe)")
    args = parser.parse_args(argv)
    if args.action == "train":
        if Path(args.out).expanduser().resolve() == REFERENCE_PATH:
            raise MegeError(f"--out {args.out} is the committed reference classifier; write elsewhere and compare hashes")
        train_classifier(out=args.out, seed=args.seed, root=args.root, epochs=args.epochs, splits=args.splits)
    _, card = load_classifier(args.out if args.action == "train" else args.path)
    same = "identical to the reference" if card["is_reference"] else "NOT the reference"
    print(f"{card['path']}  held-out accuracy {card['heldout_accuracy']:.4f}  content hash {card['content_hash']} ({same})")
    return 0
