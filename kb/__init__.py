"""gemini-kb knowledge base: the store of error families and the matcher."""

from kb.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
