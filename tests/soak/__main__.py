"""``python -m tests.soak [--seconds N] [--clients N] [--out FILE]``."""
import sys

from tests.soak.runner import main

sys.exit(main())
