"""elbia: the command-line client of the Elbia Lambda API (it talks to the public API only)."""

__version__ = "0.1.0"
