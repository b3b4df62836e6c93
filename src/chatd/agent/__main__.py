"""``python -m chatd.agent``."""

import sys

from chatd.agent.main import main

sys.exit(main())
