"""``python -m kanir``: the kanir command line (see kanir.cli.commands)."""

import sys

from kanir.cli.commands import main

sys.exit(main())
