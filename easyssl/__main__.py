"""``python -m easyssl`` runs the command line."""

import sys

from easyssl.cli import main

sys.exit(main())
