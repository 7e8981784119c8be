"""``mege classifier train|show``: the Stacked MNIST digit classifier (:mod:`mege.metrics.classifier`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mege.errors import MegeError
from mege.metrics.classifier import DEFAULT_PATH, REFERENCE_PATH, load_classifier, train_classifier
from mege.metrics.meg_classifier import MEG_DEFAULT_OUT, MEG_PATH, load_meg_classifier, train_meg_classifier


def main(argv: list[str]) -> int:
    """``mege classifier train [--arch mege|meg] [--out PATH] [--seed S] …``: train a digit classifier
    (the defaults reproduce the committed reference bit for bit on CPU; ``--arch meg`` MEG's
    architecture and recipe, reproducing ``mege/assets/mnist_classifier_meg.pt``);
    ``mege classifier show [PATH] [--arch …]``: print a classifier's card and content hash."""
    parser = argparse.ArgumentParser(prog="mege classifier", description=main.__doc__)
    parser.add_argument("action", choices=["train", "show"])
    parser.add_argument("path", nargs="?", default=None, help="show: classifier file (default: the reference)")
    parser.add_argument("--arch", choices=["mege", "meg"], default="mege",
                        help="mege: the reference classifier's recipe; meg: MEG's architecture and training script "
                             "(metric.protocol=meg, mege/metrics/meg_classifier.py)")
    parser.add_argument("--out", default=None, help=f"train: output file (default {DEFAULT_PATH}, with --arch meg {MEG_DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=None, help="default 0 (mege) or 1 (meg, their script's seed)")
    parser.add_argument("--root", default=None, help="MNIST folder (default: $MEGE_DATA_DIR or the usual places)")
    parser.add_argument("--epochs", type=int, default=None, help="default 20 (mege) or 75 (meg: their 9 380 updates on our 8 000 images)")
    parser.add_argument("--splits", nargs="+", default=["test"], choices=["train", "test"],
                        help="MNIST splits to read (default: test, the reference recipe)")
    args = parser.parse_args(argv)
    if args.arch == "meg":
        return _meg(args)
    args.out = str(DEFAULT_PATH) if args.out is None else args.out
    args.seed = 0 if args.seed is None else args.seed
    args.epochs = 20 if args.epochs is None else args.epochs
    if args.action == "train":
        if Path(args.out).expanduser().resolve() == REFERENCE_PATH:
            raise MegeError(f"--out {args.out} is the committed reference classifier; write elsewhere and compare hashes")
        train_classifier(out=args.out, seed=args.seed, root=args.root, epochs=args.epochs, splits=args.splits)
    _, card = load_classifier(args.out if args.action == "train" else args.path)
    same = "identical to the reference" if card["is_reference"] else "NOT the reference"
    print(f"{card['path']}  held-out accuracy {card['heldout_accuracy']:.4f}  content hash {card['content_hash']} ({same})")
    return 0


def _meg(args) -> int:
    """``--arch meg``: train (never over the committed asset) or show a MEG-architecture classifier."""
    if args.action == "train":
        out = MEG_DEFAULT_OUT if args.out is None else Path(args.out)
        if out.expanduser().resolve() == MEG_PATH:
            raise MegeError(f"--out {args.out} is the committed MEG-architecture classifier; write elsewhere and compare hashes")
        train_meg_classifier(out=out, seed=1 if args.seed is None else args.seed, root=args.root,
                             epochs=75 if args.epochs is None else args.epochs)
    _, card = load_meg_classifier(out if args.action == "train" else args.path)
    same = "identical to the committed asset" if card["is_committed"] else "NOT the committed asset"
    print(f"{card['path']}  held-out accuracy {card['heldout_accuracy']:.4f} (epoch {card['best_epoch']})  "
          f"content hash {card['content_hash']} ({same})")
    return 0
