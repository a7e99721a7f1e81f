from pathlib import Path

import pytest

from rag.errors import SettingsError
from rag.settings import Settings, writable_data_dir


def test_env_overrides_toml_and_explicit_overrides_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tmp_path / "rag.toml"
    toml.write_text('collection = "from-toml"\nsearch_k = 7\nanswer_k = 3\n')
    monkeypatch.setenv("RAG_CONFIG", str(toml))
    monkeypatch.setenv("RAG_SEARCH_K", "9")
    s = Settings.load()
    assert s.collection == "from-toml"
    assert s.search_k == 9  # env beats the file
    assert s.answer_k == 3
    assert Settings.load(search_k=4, collection=None).search_k == 4  # explicit beats env; None means "not given"


def test_openai_key_read_from_standard_env_var(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    s = Settings.load(llm="auto")
    assert s.openai_api_key == "sk-test"
    assert s.resolved_llm == "openai"


def test_auto_backend_is_extractive_without_key_or_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert Settings.load(llm="auto").resolved_llm == "extractive"
    assert Settings.load(llm="auto", openai_base_url="http://127.0.0.1:9/v1").resolved_llm == "openai"


def test_invalid_values_raise_settings_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("RAG_LLM", "gpt-7")
    with pytest.raises(SettingsError, match="llm"):
        Settings.load()


def test_unknown_toml_key_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    toml = tmp_path / "rag.toml"
    toml.write_text("serch_k = 3\n")
    monkeypatch.setenv("RAG_CONFIG", str(toml))
    with pytest.raises(SettingsError, match="serch_k"):
        Settings.load()


def test_the_api_key_is_kept_out_of_repr_and_dumps(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-0123456789")
    s = Settings.load()
    assert s.openai_api_key == "sk-secret-0123456789"
    for shown in (repr(s), str(s), s.model_dump_json(), str(s.model_dump())):
        assert "sk-secret" not in shown
    assert s.model_copy(update={"llm": "openai"}).openai_api_key == "sk-secret-0123456789"


def test_setting_errors_do_not_echo_the_values(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "sk-pasted-in-the-wrong-variable")
    with pytest.raises(SettingsError) as exc:
        Settings.load()
    assert "llm_timeout" in str(exc.value) and "sk-pasted" not in str(exc.value)


def test_an_empty_data_dir_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("RAG_DATA_DIR", "  ")
    with pytest.raises(SettingsError, match="RAG_DATA_DIR is set but empty; unset it to use the default"):
        Settings.load()


def test_writable_data_dir_creates_a_missing_folder_and_refuses_a_file(tmp_path: Path) -> None:
    assert writable_data_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SettingsError, match=f"the data directory {tmp_path / 'file'} cannot be written"):
        writable_data_dir(tmp_path / "file")


def test_llm_deadline_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.setenv("RAG_LLM_TIMEOUT", "45")
    monkeypatch.setenv("RAG_LLM_FIRST_TOKEN_TIMEOUT", "7.5")
    s = Settings.load()
    assert (s.llm_timeout, s.llm_first_token_timeout) == (45.0, 7.5)
    monkeypatch.setenv("RAG_LLM_FIRST_TOKEN_TIMEOUT", "0")
    with pytest.raises(SettingsError, match="llm_first_token_timeout"):
        Settings.load()
