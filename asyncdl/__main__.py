"""``python -m asyncdl``."""

from asyncdl.cli import main

if __name__ == "__main__":
    main()
