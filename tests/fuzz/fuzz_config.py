"""atheris target: the config grammar (parse, format, merge).

    python tests/fuzz/fuzz_config.py [libFuzzer flags] [CORPUS_DIR ...]

Any input must either parse or raise ``ConfigError``; what parses must format, re-parse to the same
config, and merge idempotently. tests/test_fuzz.py runs this briefly; docs/reliability.md has a longer run.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["ort_reduced_build"]):
    from ort_reduced_build.engine.config import format_config, merge, parse_config
    from ort_reduced_build.errors import ConfigError


def test_one_input(data: bytes) -> None:
    text = atheris.FuzzedDataProvider(data).ConsumeUnicodeNoSurrogates(len(data))
    try:
        config = parse_config(text, "fuzz.config")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.config"), exc
        return
    formatted = format_config(config)
    again = parse_config(formatted, "formatted.config")
    assert again == config, (text, formatted)
    assert format_config(again) == formatted
    assert merge([config, config]) == merge([config])


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
