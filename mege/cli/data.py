"""``mege data mnist [--dest DIR]``: download and verify MNIST (:mod:`mege.data.mnist`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mege.data.mnist import CACHE_DIR, ENV_VAR, PUBLISHED_MD5, SPLIT_FILES, download_mnist, read_split


def main(argv: list[str]) -> int:
    """``mege data mnist [--dest DIR]``: download and verify the four MNIST files."""
    parser = argparse.ArgumentParser(prog="mege data", description=main.__doc__)
    parser.add_argument("dataset", choices=["mnist"])
    parser.add_argument("--dest", default=str(CACHE_DIR), help="folder for the IDX files (default %(default)s)")
    args = parser.parse_args(argv)
    for path in download_mnist(args.dest):
        print(f"ok  {path}  md5 {PUBLISHED_MD5[path.name]}")
    for split in SPLIT_FILES:
        part = read_split(args.dest, split)
        print(f"{split}: {len(part.images)} images")
    print(f"use it with {ENV_VAR}={Path(args.dest).expanduser()}")
    return 0
