"""``python -m auditmw``: the command line."""

from auditmw.cli.main import main

raise SystemExit(main())
