"""`python -m lib.keys`: the key CLI (also installed as the `streamgate-keys` console script)."""

import sys

from lib.keys.cli import main

sys.exit(main())
