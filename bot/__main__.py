"""``python -m bot``: run the bot (default), or an offline subcommand."""

import sys

from bot.cli.main import main

sys.exit(main())
