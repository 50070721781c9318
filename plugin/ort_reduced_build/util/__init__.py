"""Base helpers every layer may use, importing nothing of ours: atomic file writes (``fileio``), scratch
directories (``scratch``), ELF reading (``elf``), the compiler cache's tools and environment
(``compiler_cache``)."""
