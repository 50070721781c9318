"""Base helpers every layer uses: atomic file writes, scratch directories, ELF reading."""
