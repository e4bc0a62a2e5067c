"""``python -m complaint_desk`` is the same as ``complaint-desk``."""

from .cli import main

if __name__ == "__main__":
    main()
