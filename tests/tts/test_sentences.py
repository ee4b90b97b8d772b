from switchboard.tts.sentences import SentenceSplitter


def test_sentences_are_released_when_complete_and_concatenate_back() -> None:
    splitter = SentenceSplitter()
    tokens = ["Thanks", " for calling.", " What is", " your address? ", "And ", "your postcode", "?"]
    out = [s for t in tokens for s in splitter.push(t)]
    assert out == ["Thanks for calling. ", "What is your address? "]
    assert splitter.rest() == "And your postcode?"
    assert splitter.rest() == ""


def test_abbreviation_without_space_and_newlines() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("It costs 3.50 pounds\nOK") == ["It costs 3.50 pounds\n"]
    assert splitter.push(' "Right." Then') == ['OK "Right." ']
    splitter.clear()
    assert splitter.rest() == ""
