"""``python -m voxgate`` is the ``voxgate`` command."""

from voxgate.cli import app

if __name__ == "__main__":
    app(prog_name="voxgate")
