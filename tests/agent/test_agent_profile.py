"""The agent profile: the shipped default loads and renders; bad profiles fail at load naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.agent.profile import LINE_NAMES, ProfileError, load_profile, parse_profile

DEFAULT = load_profile()
DEFAULT_TEXT = (Path(__file__).parents[2] / "switchboard/agent/profiles/default.toml").read_text()


def test_default_profile_loads_with_every_line_and_renders() -> None:
    assert DEFAULT.business_name == "Acme Property Repairs"
    assert set(DEFAULT.lines) == set(LINE_NAMES)
    assert DEFAULT.model == "gpt-4o-mini" and 0 < DEFAULT.first_token_timeout_s <= 30
    prompt = DEFAULT.system_prompt()
    assert "Acme Property Repairs" in prompt and "smell of gas" in prompt and "{" not in prompt
    assert DEFAULT.core_lines().greeting.startswith("Hello, you're through to Acme Property Repairs")
    assert DEFAULT.line("goodbye", name="Jane").startswith("Thank you, Jane.")


def test_values_are_inserted_as_text_not_templates() -> None:
    assert "{business_name}" in DEFAULT.line("goodbye", name="{business_name}")


def test_operator_number_fills_empty_transfer_and_alert_lists_only() -> None:
    with_operator = DEFAULT.with_operator("07700 900001")
    assert with_operator.transfer_numbers == with_operator.alert_recipients == ("+447700900001",)
    own = parse_profile(DEFAULT_TEXT.replace("transfer_numbers = []", 'transfer_numbers = ["+447700900555"]'))
    assert own.with_operator("07700900001").transfer_numbers == ("+447700900555",)


def test_a_file_path_loads(tmp_path: Path) -> None:
    path = tmp_path / "plumbing.toml"
    path.write_text(DEFAULT_TEXT.replace('name = "Acme Property Repairs"', 'name = "Pipe Pros"'))
    assert load_profile(path).line("greeting").startswith("Hello, you're through to Pipe Pros.")


@pytest.mark.parametrize(("change", "problem"), [
    (("[lines]", "[linez]"), "missing table \\[lines\\]"),
    (('greeting = "Hello', 'greeting = "Hello {caller_name}'), "template 'greeting' uses \\['caller_name'\\]"),
    (('readback = "Let me read that back. {facts}', 'readback = "Let me read that back. {facts'), "malformed"),
    (('fields = ["caller_name",', 'fields = ["shoe_size",'), "fields must be some of"),
    (("transfer_numbers = []", 'transfer_numbers = ["not a number"]'), "'not a number' is not a phone number"),
    (("first_token_timeout_s = 2.5", "first_token_timeout_s = 0"), "first_token_timeout_s"),
    (('reprompt = "Sorry', 'unknown_line = "x"\nreprompt = "Sorry'), "unknown keys \\['unknown_line'\\]"),
    (("[model]", "[model\n"), "not valid TOML"),
])
def test_bad_profiles_are_refused_with_the_key(change: tuple[str, str], problem: str) -> None:
    assert change[0] in DEFAULT_TEXT
    with pytest.raises(ProfileError, match=f"^my.toml: .*{problem}"):
        parse_profile(DEFAULT_TEXT.replace(*change, 1), "my.toml")


def test_a_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "nope.toml")
