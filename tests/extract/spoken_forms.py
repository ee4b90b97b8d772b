"""Generators of spoken forms of postcodes and phone numbers, as callers say them and recognisers write them.

Seeded (``random.Random``), so a failing form is reproducible from its test id.
"""

from __future__ import annotations

import random

DIGIT_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEENS = {10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen", 16: "sixteen",
         17: "seventeen", 18: "eighteen", 19: "nineteen"}
TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
NAMES = {"A": "ay", "B": "bee", "C": "cee", "D": "dee", "E": "ee", "F": "eff", "G": "gee", "H": "aitch", "J": "jay",
         "K": "kay", "L": "el", "M": "em", "N": "en", "P": "pee", "Q": "queue", "R": "ar", "S": "ess", "T": "tee",
         "V": "vee", "W": "double you", "X": "ex", "Y": "why", "Z": "zed", "O": "oh", "U": "you", "I": "eye"}
NATO = {"A": "Alpha", "B": "Bravo", "C": "Charlie", "D": "Delta", "E": "Echo", "F": "Foxtrot", "G": "Golf",
        "H": "Hotel", "I": "India", "J": "Juliet", "K": "Kilo", "L": "Lima", "M": "Mike", "N": "November",
        "O": "Oscar", "P": "Papa", "Q": "Quebec", "R": "Romeo", "S": "Sierra", "T": "Tango", "U": "Uniform",
        "V": "Victor", "W": "Whiskey", "X": "X-ray", "Y": "Yankee", "Z": "Zulu"}
FOR_WORDS = {"A": "apple", "B": "Bristol", "D": "David", "E": "Edward", "F": "Freddie", "H": "Harry", "L": "London",
             "M": "Mary", "N": "Norman", "P": "Peter", "S": "sugar", "T": "Tommy", "W": "William", "Y": "yellow"}

POSTCODES = ["LS6 2AB", "CF24 3HQ", "SE15 4QN", "M14 5TQ", "G20 8QQ", "B11 1AX", "SW1A 1AA", "EC1A 1BB", "W1D 3QF",
             "OL8 1WA", "BT7 1NN", "EH1 2NG", "NE1 4ST", "BS8 1TH", "PL4 6DX", "YO10 5DD", "DN55 1PT", "CR0 2YR",
             "N1C 4AX", "E1W 1YW", "NW1 6XE", "WC2H 7LT", "AB10 1XG", "KY16 9AJ", "TR18 4LD", "HU5 3RP", "ZE1 0LL",
             "IM1 2RF", "JE2 3QN", "SA1 8EN", "LL57 2DG", "M1 1AE", "S1 2HE", "L1 8JQ", "BN1 1GE", "GU1 4PZ",
             "OX1 3BG", "CB2 1TN", "DH1 3LE", "TQ1 2BB", "NG7 2RD", "RG1 8DN", "CV4 7AL", "BD7 1DP", "HX1 1RE"]
PHONES = ["07700 900123", "07700 900456", "07700 900077", "07700 900999", "07700 900500", "07700 900321",
          "0113 496 0000", "0113 496 0715", "020 7946 0018", "020 7946 0999", "0161 496 0444", "0131 496 0108",
          "0117 496 0555", "0121 496 0222", "0114 496 0330", "0191 498 0661", "028 9649 6007", "029 2018 0011",
          "01632 960 111", "01632 960 899", "0808 157 0192", "0300 123 4567", "07911 123456", "07400 123000"]
FILLERS = ["", "", "", "erm, ", "um, ", "uh "]
FRAMES = ["the postcode is {}", "it's {}", "{}", "postcode {}, yeah", "yeah it's {} thanks", "that's {}",
          "the post code's {}."]
PHONE_FRAMES = ["you can reach me on {}", "it's {}", "{}", "my mobile is {}, thanks", "call me back on {}.",
                "yeah, {}", "best number is {}"]


def say_letter(letter: str, rng: random.Random) -> str:
    style = rng.choice(["plain", "plain", "plain", "dotted", "lower", "name", "nato", "for"])
    if style == "dotted":
        return f"{letter}."
    if style == "lower" and letter not in "AI":  # lower-case "a"/"i" are everyday words; tested on their own
        return letter.lower()
    if style == "name" and letter in NAMES and letter not in "OUIY":
        return NAMES[letter]
    if style == "nato":
        return NATO[letter]
    if style == "for" and letter in FOR_WORDS:
        return f"{letter} for {FOR_WORDS[letter]}"
    return letter


def say_digit(digit: str, rng: random.Random, *, zero: tuple[str, ...] = ("oh", "zero", "nought")) -> str:
    if digit == "0":
        return rng.choice(zero)
    return DIGIT_WORDS[int(digit)] if rng.random() < 0.85 else digit


def say_number(value: int) -> str:
    if value < 10:
        return DIGIT_WORDS[value]
    if value < 20:
        return TEENS[value]
    tens, unit = divmod(value, 10)
    return TENS[tens] + (f" {DIGIT_WORDS[unit]}" if unit else "")


def spoken_postcode(postcode: str, rng: random.Random) -> str:
    """One way of saying ``postcode``: letter by letter with letter names, NATO words or "S for sugar", the
    district as a number or digit by digit, "double" for repeated inward letters, or written by the recogniser."""
    outward, inward = postcode.split()
    if rng.random() < 0.15:
        return rng.choice([postcode, postcode.replace(" ", ""), postcode.lower(), f"{outward}, {inward}"])
    area = "".join(c for c in outward[:2] if c.isalpha())
    district = outward[len(area):]
    pieces = [say_letter(c, rng) for c in area]
    if district.isdigit() and len(district) == 2 and district[0] != "0" and rng.random() < 0.6:
        pieces.append(say_number(int(district)))
    else:
        pieces.extend(say_digit(c, rng, zero=("oh", "zero")) if c.isdigit() else say_letter(c, rng)
                      for c in district)
    sep = rng.choice([", ", " ", ". ", "... "])
    inward_words = [say_digit(inward[0], rng, zero=("oh", "zero"))]
    if inward[1] == inward[2] and rng.random() < 0.6:
        inward_words.append(f"double {say_letter(inward[1], rng) if rng.random() < 0.5 else inward[1]}")
    else:
        inward_words.extend(say_letter(c, rng) for c in inward[1:])
    joiner = rng.choice([" ", " ", ", "])
    return joiner.join(pieces) + sep + joiner.join(inward_words)


def postcode_forms(count: int, seed: int = 6) -> list[tuple[str, str]]:
    """``count`` (text, expected postcode) pairs, each a postcode said in a sentence."""
    rng = random.Random(seed)
    forms = []
    for n in range(count):
        postcode = POSTCODES[n % len(POSTCODES)]
        said = rng.choice(FILLERS) + spoken_postcode(postcode, rng)
        forms.append((rng.choice(FRAMES).format(said), postcode))
    return forms


def spoken_phone(number: str, rng: random.Random) -> str:
    """One way of saying ``number`` (national format with spaces): in its groups or regrouped, with "oh",
    "double", "treble", "hundred", "plus four four", or written digits."""
    digits = number.replace(" ", "")
    groups = number.split()
    international = rng.random() < 0.2
    if rng.random() < 0.15:
        return rng.choice([number, digits, f"+44 {number[1:]}", f"+44 (0){digits[1:]}"])
    if digits.startswith("07") and rng.random() < 0.3:
        groups = [digits[:5], digits[5:8], digits[8:]]
    if international:
        groups[0] = groups[0][1:]
    spoken_groups = [_say_group(g, rng) for g in groups if g]
    sep = rng.choice([", ", " ", ". ", ", erm, "])
    text = sep.join(spoken_groups)
    return ("plus four four " + text) if international else text


def _say_group(group: str, rng: random.Random) -> str:
    if group.endswith("00") and len(group) == 3 and group[0] != "0" and rng.random() < 0.3:
        return f"{DIGIT_WORDS[int(group[0])]} hundred"
    words, i = [], 0
    while i < len(group):
        run = len(group) - i - len(group[i:].lstrip(group[i]))
        if run >= 3 and rng.random() < 0.6:
            words.append(f"treble {say_digit(group[i], rng)}")
            i += 3
        elif run >= 2 and rng.random() < 0.7:
            words.append(f"double {say_digit(group[i], rng)}")
            i += 2
        else:
            words.append(say_digit(group[i], rng))
            i += 1
    return " ".join(words)


def e164(number: str) -> str:
    return "+44" + number.replace(" ", "")[1:]


def phone_forms(count: int, seed: int = 7) -> list[tuple[str, str]]:
    """``count`` (text, expected E.164) pairs, each a number said in a sentence."""
    rng = random.Random(seed)
    forms = []
    for n in range(count):
        number = PHONES[n % len(PHONES)]
        said = rng.choice(FILLERS) + spoken_phone(number, rng)
        forms.append((rng.choice(PHONE_FRAMES).format(said), e164(number)))
    return forms
