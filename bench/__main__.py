"""Entry point: `python -m bench` (see bench/README.md and bench.main)."""

import sys

from bench.main import main

sys.exit(main())
