"""``python -m auditmw``: the command line."""

from auditmw.cli import main

raise SystemExit(main())
