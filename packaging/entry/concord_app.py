"""The frozen ``concord`` executable's entry point (PyInstaller runs this as ``__main__``)."""

import sys

from desktop.app import main

if __name__ == "__main__":
    sys.exit(main())
