"""Tests of the model catalogue: built-ins, TOML overrides, and name resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.catalogue import (
    BUILTIN_PLATFORMS,
    Catalogue,
    CatalogueError,
    ModelInfo,
    UnknownModelError,
    builtin_entries,
    load_catalogue_file,
    parse_catalogue,
)


def builtin(*enabled: str) -> Catalogue:
    """The built-in catalogue with the given platforms enabled."""
    return Catalogue(BUILTIN_PLATFORMS.values(), enabled=enabled).apply(builtin_entries())


def write(tmp_path: Path, text: str) -> Path:
    """Write ``text`` to a models file under ``tmp_path`` and return its path."""
    path = tmp_path / "models.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_builtin_platform_has_models() -> None:
    """Each seed platform ships at least one built-in model, in platform order."""
    catalogue = builtin(*BUILTIN_PLATFORMS)
    assert list(catalogue.by_platform()) == ["zju", "zhipu", "zai", "dashscope", "ustb"]


def test_zju_builtins_follow_the_seed() -> None:
    """ZJU offers the seed's chat and vision models, with R1/QwQ marked as reasoning."""
    models = {m.model: m for m in builtin("zju").by_platform()["zju"]}
    assert set(models) == {
        "deepseek-r1-distill-qwen",
        "deepseek-r1-671b",
        "deepseek-v3-671b",
        "qwen2.5-instruct",
        "QwQ-32B",
        "llava-onevision-qwen2-7b-ov",
    }
    reasoning = {name for name, m in models.items() if m.reasoning}
    assert reasoning == {"deepseek-r1-distill-qwen", "deepseek-r1-671b", "QwQ-32B"}
    assert [name for name, m in models.items() if m.vision] == ["llava-onevision-qwen2-7b-ov"]


def test_builtin_marks_of_other_platforms() -> None:
    """Zhipu, Z.ai, DashScope and USTB built-ins carry the expected ids and marks."""
    catalogue = builtin(*BUILTIN_PLATFORMS)
    vision_thinking = catalogue.get("zhipu:glm-4.1v-thinking-flash")
    assert vision_thinking is not None and vision_thinking.vision and vision_thinking.reasoning
    assert catalogue.get("zhipu:glm-4v-flash") == catalogue.resolve("glm-4v-flash")
    assert catalogue.resolve("glm-4v-flash").vision
    assert catalogue.resolve("zai:glm-4.5-flash").platform == "zai"
    assert catalogue.resolve("qwen3-235b-a22b").reasoning
    assert catalogue.resolve("qwen-vl-plus").vision
    assert catalogue.resolve("DeepSeek").key == "ustb:DeepSeek"
    assert "bge-m3" not in {m.model for m in catalogue.all_models()}


def test_builtin_keys_are_platform_and_model() -> None:
    """Every built-in key is '<platform>:<model>' and names a known platform."""
    for info in builtin().all_models():
        assert info.key == f"{info.platform}:{info.model}"
        assert info.platform in BUILTIN_PLATFORMS
        assert info.context_window > 0


def test_model_info_rejects_a_mismatched_key() -> None:
    """A ModelInfo whose key is not platform:model is refused."""
    with pytest.raises(ValueError, match="platform"):
        ModelInfo("zju:a", "zju", "b", "B")


def test_models_of_disabled_platforms_are_not_enabled() -> None:
    """Only enabled platforms contribute enabled models, and get() ignores the others."""
    catalogue = builtin("zhipu")
    assert {m.platform for m in catalogue.enabled_models()} == {"zhipu"}
    assert catalogue.get("zju:deepseek-v3-671b") is None
    assert catalogue.get("zhipu:glm-4-plus") is not None


def test_file_extends_a_platform_at_the_end(tmp_path: Path) -> None:
    """A new model from the file is added last in its platform, with defaults filled in."""
    path = write(tmp_path, '[[models]]\nplatform = "zju"\nmodel = "new-model"\n')
    catalogue = builtin("zju").apply(load_catalogue_file(path))
    added = catalogue.by_platform()["zju"][-1]
    assert added == ModelInfo("zju:new-model", "zju", "new-model", "new-model")
    assert added.context_window == 32768


def test_file_overrides_only_the_fields_it_names(tmp_path: Path) -> None:
    """Overriding a built-in changes the named fields and keeps its place and other fields."""
    path = write(
        tmp_path,
        '[[models]]\nplatform = "zju"\nmodel = "deepseek-r1-671b"\n'
        'display_name = "R1 (campus)"\ncontext_window = 131072\n',
    )
    before = builtin("zju")
    after = before.apply(load_catalogue_file(path))
    assert [m.key for m in after.enabled_models()] == [m.key for m in before.enabled_models()]
    info = after.resolve("deepseek-r1-671b")
    assert (info.display_name, info.context_window, info.reasoning) == ("R1 (campus)", 131072, True)


def test_file_removes_a_builtin(tmp_path: Path) -> None:
    """An entry with remove = true hides the built-in model."""
    path = write(tmp_path, '[[models]]\nplatform = "zju"\nmodel = "QwQ-32B"\nremove = true\n')
    catalogue = builtin("zju").apply(load_catalogue_file(path))
    assert catalogue.get("zju:QwQ-32B") is None
    with pytest.raises(UnknownModelError):
        catalogue.resolve("QwQ-32B")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[models]\nplatform =", "invalid TOML"),
        ('[[model]]\nplatform = "zju"', "unknown top-level key 'model'"),
        ('models = "x"', "array of tables"),
        ('[[models]]\nmodel = "m"', r"\[\[models\]\] #1: 'platform' is missing"),
        ('[[models]]\nplatform = "zju"\nmodel = "m"\nvisoin = true', "unknown field 'visoin'"),
        ('[[models]]\nplatform = "zju"\nmodel = "m"\ncontext_window = "big"', "must be a int"),
        ('[[models]]\nplatform = "zju"\nmodel = "m"\ncontext_window = true', "must be a int"),
        ('[[models]]\nplatform = "zju"\nmodel = "m"\ncontext_window = 0', "positive"),
        ('[[models]]\nplatform = "zju"\nmodel = " m"', "outer spaces"),
        ('[[models]]\nplatform = "a:b"\nmodel = "m"', "must not contain ':'"),
        ('[[models]]\nplatform = "zju"\nmodel = "m"\nremove = true\nvision = true', "no other"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    """Every invalid models file raises a one-line CatalogueError starting with its path."""
    path = write(tmp_path, text)
    with pytest.raises(CatalogueError, match=message) as info:
        load_catalogue_file(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_second_entry_is_named_with_its_key(tmp_path: Path) -> None:
    """An error in the second entry names it by position and key."""
    text = '[[models]]\nplatform = "zju"\nmodel = "a"\n[[models]]\nplatform = "zju"\nmodel = "b"\n'
    path = write(tmp_path, text + "vision = 1\n")
    with pytest.raises(
        CatalogueError, match=r"\[\[models\]\] #2 \(zju:b\): 'vision' must be a bool"
    ):
        load_catalogue_file(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    """A models file that does not exist raises CatalogueError naming it."""
    path = tmp_path / "absent.toml"
    with pytest.raises(CatalogueError, match=r"absent\.toml: cannot read"):
        load_catalogue_file(path)


def test_unknown_platform_and_missing_removal_are_refused() -> None:
    """Applying an entry for an unknown platform, or removing an absent model, fails clearly."""
    catalogue = builtin("zju")
    entries = parse_catalogue('[[models]]\nplatform = "zjuu"\nmodel = "m"', source="f.toml")
    with pytest.raises(
        CatalogueError, match=r"f.toml: \[\[models\]\] #1 .*unknown platform 'zjuu'"
    ):
        catalogue.apply(entries)
    removal = parse_catalogue(
        '[[models]]\nplatform = "zju"\nmodel = "nope"\nremove = true', source="f.toml"
    )
    with pytest.raises(CatalogueError, match="cannot remove"):
        catalogue.apply(removal)


def test_resolve_by_key_and_unique_bare_id() -> None:
    """A key or a bare id unique among enabled models resolves, ignoring case as a fallback."""
    catalogue = builtin("zju", "zhipu")
    assert catalogue.resolve("zju:deepseek-v3-671b").model == "deepseek-v3-671b"
    assert catalogue.resolve("glm-4-flash").key == "zhipu:glm-4-flash"
    assert catalogue.resolve("qwq-32b").key == "zju:QwQ-32B"
    assert catalogue.resolve("  ZJU:qwq-32b ").key == "zju:QwQ-32B"


def test_bare_id_served_by_two_enabled_platforms_is_ambiguous() -> None:
    """A bare id on both Zhipu and Z.ai is refused, listing both keys; a key still works."""
    catalogue = builtin("zhipu", "zai")
    with pytest.raises(UnknownModelError, match="several platforms") as info:
        catalogue.resolve("glm-4.5")
    assert info.value.reason == "ambiguous"
    assert info.value.candidates == ("zhipu:glm-4.5", "zai:glm-4.5")
    assert catalogue.resolve("zai:glm-4.5").platform == "zai"
    assert builtin("zai").resolve("glm-4.5").key == "zai:glm-4.5"


def test_file_added_duplicate_id_makes_bare_id_ambiguous(tmp_path: Path) -> None:
    """glm-4-flash declared for Z.ai in a file makes the bare id ambiguous with Zhipu's."""
    path = write(tmp_path, '[[models]]\nplatform = "zai"\nmodel = "glm-4-flash"\n')
    catalogue = builtin("zhipu", "zai").apply(load_catalogue_file(path))
    with pytest.raises(UnknownModelError, match="zhipu:glm-4-flash, zai:glm-4-flash"):
        catalogue.resolve("glm-4-flash")


def test_resolve_names_a_disabled_platform() -> None:
    """A model of a platform without credentials is reported as not enabled, not unknown."""
    with pytest.raises(UnknownModelError, match=r"not enabled \(dashscope\)") as info:
        builtin("zju").resolve("qwen-plus")
    assert info.value.reason == "disabled"
    assert info.value.candidates == ("dashscope:qwen-plus",)


def test_unknown_name_lists_close_matches() -> None:
    """An unknown name lists close matches among enabled models only."""
    with pytest.raises(UnknownModelError, match=r"close matches: .*zju:deepseek-v3-671b") as info:
        builtin("zju").resolve("deepseek-v3")
    assert info.value.reason == "unknown"
    assert all(key.startswith("zju:") for key in info.value.candidates)


def test_unknown_name_without_close_match_lists_enabled_models() -> None:
    """With no close match the message lists enabled models; with none enabled it says so."""
    with pytest.raises(UnknownModelError, match=r"enabled models: ustb:DeepSeek$"):
        builtin("ustb").resolve("zzzzzz")
    with pytest.raises(UnknownModelError, match="no model is enabled"):
        builtin().resolve("zzzzzz")
