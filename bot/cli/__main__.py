"""`python -m newsbot.bot.cli`: the `newsbot` command."""

import sys

from newsbot.bot.cli import main

sys.exit(main())
