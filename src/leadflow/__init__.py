"""leadflow: async lead management for online sellers."""

__version__ = "0.1.0"
