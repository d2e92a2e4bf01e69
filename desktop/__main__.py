"""``python -m desktop``: the same as the ``concord`` command."""

from desktop.app import main

raise SystemExit(main())
