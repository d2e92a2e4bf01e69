"""The frozen ``concord-server`` executable's entry point (run by PyInstaller as ``__main__``)."""

import sys

from server.cli import main

if __name__ == "__main__":
    sys.exit(main())
