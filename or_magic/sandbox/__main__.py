"""``python -m or_magic.sandbox``: run the sandbox as a process."""

import sys

from .control import main

sys.exit(main())
