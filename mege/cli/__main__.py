"""``python -m mege.cli <command> ...``."""

import sys

from mege.cli import main

sys.exit(main())
