"""`python -m streams.cli`: the `sunes` command, as the demo starts its worker and simulator."""

import sys

from streams.cli import main

sys.exit(main())
