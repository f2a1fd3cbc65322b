"""``python -m normscale`` is the ``normscale`` command."""

import sys

from normscale.cli import main

sys.exit(main())
