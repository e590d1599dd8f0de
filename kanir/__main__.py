"""``python -m kanir``: the kanir command line (see kanir.cli)."""

import sys

from kanir.cli import main

sys.exit(main())
