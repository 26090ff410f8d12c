"""`python -m core ...`: the command-line face of the engine."""

import sys

from core.cli import main

sys.exit(main())
