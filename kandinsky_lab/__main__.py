"""`python -m kandinsky_lab …` is the `kandinsky-lab` command (and what `accelerate launch -m` runs)."""

import sys

from .cli import main

sys.exit(main())
