"""Figures (PNG) and the HTML / Markdown report of a run (``ihs report``)."""
from .figures import DPI, SIZES, MapFrame, pixel_size
from .html import Section, write_html, write_markdown

__all__ = ["DPI", "SIZES", "MapFrame", "pixel_size", "Section", "write_html", "write_markdown"]
