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


def test_the_first_piece_of_a_turn_may_end_at_a_clause() -> None:
    splitter = SentenceSplitter(lead_clause_chars=12)
    out = splitter.push("Thanks for calling Acme, could you tell me the address, please? And the postcode, too. ")
    assert out == ["Thanks for calling Acme, ", "could you tell me the address, please? ",
                   "And the postcode, too. "]  # only the turn's first piece is cut at a clause
    assert splitter.rest() == ""
    assert splitter.push("Yes, that's right. ") == ["Yes, that's right. "]  # a clause break too early to cut at
    splitter.rest()
    assert splitter.push("the property at 14 Harehills Lane") == []  # a new turn, cut while still streaming:
    assert splitter.push(" - and your postcode?") == ["the property at 14 Harehills Lane - "]
    assert splitter.rest() == "and your postcode?"


def test_without_a_clause_break_the_first_piece_is_the_sentence() -> None:
    splitter = SentenceSplitter(lead_clause_chars=12)
    assert splitter.push("Could you tell me the address of the property please? Thanks, ") == [
        "Could you tell me the address of the property please? "]
    assert splitter.rest() == "Thanks, "
