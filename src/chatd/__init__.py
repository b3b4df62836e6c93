"""chatd: a self-hosted server for AI coding-agent chats."""

__version__ = "0.1.0"
