"""The backend's settings reader: pyproject < -C < environment, typed values, every unknown key reported."""

from __future__ import annotations

import pytest
from ort_reduced_build.errors import SettingsError
from ort_reduced_build.settings import BackendSettings, read_backend_settings


def read(
    table: dict[str, object] | None = None, conf: dict[str, object] | None = None, env: dict[str, str] | None = None
) -> tuple[BackendSettings, dict[str, str]]:
    pyproject = {"tool": {"ort-reduced-build": table}} if table is not None else {}
    return read_backend_settings(pyproject, conf, env or {})


def test_defaults_are_the_contract() -> None:
    settings, origins = read()
    assert settings == BackendSettings()
    assert (settings.optimization_level, settings.optimization_style) == ("all", ("Fixed",))
    assert (settings.target_platform, settings.type_reduction, settings.bundle) == (None, True, "ort")
    assert (settings.config, settings.jobs, settings.cache_dir) == (None, None, None)
    assert origins == {}


def test_precedence_pyproject_then_c_then_environment() -> None:
    settings, origins = read(
        {"bundle": "onnx", "jobs": 2, "models": ["a/*.onnx"]},
        {"ort-reduced-build.bundle": "both", "ort-reduced-build.jobs": "3"},
        {"ORT_REDUCED_BUILD_JOBS": "4"},
    )
    assert (settings.models, settings.bundle, settings.jobs) == (("a/*.onnx",), "both", 4)
    assert origins == {
        "models": "pyproject.toml [tool.ort-reduced-build] models",
        "bundle": "-C ort-reduced-build.bundle",
        "jobs": "environment ORT_REDUCED_BUILD_JOBS",
    }


def test_text_values_are_parsed() -> None:
    settings, _ = read(
        conf={
            "ort-reduced-build.optimization-style": ["Fixed", "Runtime"],  # -C given twice: pip passes a list
            "ort-reduced-build.models": "a/*.onnx; b/**/*.onnx",
            "ort-reduced-build.type-reduction": "off",
        },
        env={"ORT_REDUCED_BUILD_TARGET_PLATFORM": "arm", "ORT_REDUCED_BUILD_EXCLUDE": "b/big.onnx"},
    )
    assert settings.optimization_style == ("Fixed", "Runtime")
    assert settings.models == ("a/*.onnx", "b/**/*.onnx")
    assert settings.type_reduction is False
    assert (settings.target_platform, settings.exclude) == ("arm", ("b/big.onnx",))


def test_other_config_settings_and_environment_are_not_ours() -> None:
    settings, _ = read(
        conf={"cmake.define.FOO": "1", "build-dir": "build"},
        env={"ORT_REDUCED_BUILD_PYTHON": "/usr/bin/python3", "ORT_REDUCED_BUILD_BUNDLE": "", "PATH": "/bin"},
    )
    assert settings == BackendSettings()


def test_every_unknown_key_of_every_source_is_reported_once_with_suggestions() -> None:
    with pytest.raises(SettingsError) as info:
        read(
            {"optimisation-level": "all", "modles": ["x"]},
            {"ort-reduced-build.bundel": "ort", "ort-reduced-build.zzz": "1"},
            {"ORT_REDUCED_BUILD_JOB": "2"},
        )
    assert str(info.value).splitlines() == [
        (
            "pyproject.toml [tool.ort-reduced-build] optimisation-level: unknown setting; "
            "did you mean 'optimization-level' or 'optimization-style'?"
        ),
        "pyproject.toml [tool.ort-reduced-build] modles: unknown setting; did you mean 'models'?",
        "-C ort-reduced-build.bundel: unknown setting; did you mean 'ort-reduced-build.bundle'?",
        "-C ort-reduced-build.zzz: unknown setting",
        "environment ORT_REDUCED_BUILD_JOB: unknown setting; did you mean 'ORT_REDUCED_BUILD_JOBS'?",
    ]


@pytest.mark.parametrize(
    ("table", "conf", "env", "message"),
    [
        (
            {"models": "a/*.onnx"},
            {},
            {},
            "pyproject.toml [tool.ort-reduced-build] models: expected an array, got 'a/*.onnx'",
        ),
        ({"jobs": "2"}, {}, {}, "pyproject.toml [tool.ort-reduced-build] jobs: expected an integer, got '2'"),
        ({"type-reduction": "yes"}, {}, {}, "type-reduction: expected true or false, got 'yes'"),
        ({}, {"ort-reduced-build.jobs": "0"}, {}, "-C ort-reduced-build.jobs: must be at least 1, got 0"),
        ({}, {"ort-reduced-build.bundle": ["ort", "onnx"]}, {}, "-C ort-reduced-build.bundle: given 2 times"),
        ({}, {}, {"ORT_REDUCED_BUILD_OPTIMIZATION_LEVEL": "max"}, "'max' is not one of disable, basic, extended"),
        ({}, {}, {"ORT_REDUCED_BUILD_OPTIMIZATION_STYLE": "Fixed;Dynamic"}, "'Dynamic' is not one of Fixed, Runtime"),
        ({"optimization-style": []}, {}, {}, "optimization-style: give at least one of Fixed, Runtime"),
        ({"config": "/etc/ops.config"}, {}, {}, "config: '/etc/ops.config' must be a relative path inside the wheel"),
        ({"config": "../ops.config"}, {}, {}, "must be a relative path inside the wheel"),
        ({"compiler-cache": "distcc"}, {}, {}, "compiler-cache: 'distcc' is not one of ccache, sccache, none"),
        (
            {},
            {},
            {"ORT_REDUCED_BUILD_COMPILER_CACHE_REMOTE": "ftp://cache"},
            "environment ORT_REDUCED_BUILD_COMPILER_CACHE_REMOTE: 'ftp://cache' is not a remote storage URL",
        ),
    ],
)
def test_invalid_values_name_the_source_and_key(
    table: dict[str, object], conf: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=None) as info:
        read(table, conf, env)
    assert message in str(info.value)


def test_a_tool_table_that_is_not_a_table() -> None:
    with pytest.raises(SettingsError, match=r"\[tool.ort-reduced-build\] must be a table"):
        read_backend_settings({"tool": {"ort-reduced-build": ["models"]}}, None, {})
