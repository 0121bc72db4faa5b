"""``python -m testbed.faultproxy``: run the fault proxy (see ``server.build_parser`` for options)."""

import sys

from .server import main

sys.exit(main())
