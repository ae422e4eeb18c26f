"""``python -m demo``: start the demo target (see demo/server.py for the options)."""

import sys

from demo.server import main

sys.exit(main())
