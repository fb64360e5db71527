"""citycredit — monthly scoring warehouse for Chinese city personal credit scores."""

__version__ = "0.1.0"
