"""Student credentials (contract tokens.py): format, normalisation, hashing, join links."""

from __future__ import annotations

import hashlib

import pytest
from classroom_contract import tokens


def test_a_new_credential_is_16_crockford_characters_and_fresh_each_time():
    made = {tokens.new_credential() for _ in range(2000)}
    assert len(made) == 2000
    assert all(len(c) == 16 and set(c) <= set(tokens.ALPHABET) for c in made)
    assert set("".join(made)) == set(tokens.ALPHABET)  # every symbol used: 32 x 16 = 80 bits


@pytest.mark.parametrize(
    "typed",
    ["ABCD-EFGH-JKMN-PQ10", "abcd efgh jkmn pq10", " ABCDEFGHJKMNPQ10\n", "abcd-efgh-jkmn-pqlo", "ABCD-EFGH-JKMN-PQIO"],
)
def test_typed_forms_normalise_to_the_same_credential_and_hash(typed):
    assert tokens.normalise(typed) == "ABCDEFGHJKMNPQ10"
    assert tokens.credential_sha256(typed) == hashlib.sha256(b"ABCDEFGHJKMNPQ10").hexdigest()


@pytest.mark.parametrize("bad", [None, "", "ABCD", "ABCDEFGHJKMNPQ10X", "ABCDEFGHJKMNPQ1U", "ÄBCDEFGHJKMNPQ10", 42])
def test_what_cannot_be_a_credential_is_refused(bad):
    assert tokens.normalise(bad) is None and (not isinstance(bad, str) or tokens.credential_sha256(bad) is None)


def test_display_and_join_link_round_trip():
    credential = tokens.new_credential()
    shown = tokens.display(credential)
    assert len(shown) == 19 and shown.count("-") == 3 and tokens.normalise(shown) == credential
    link = tokens.join_link("https://class.example.org/", credential)
    assert link == f"https://class.example.org/join#{credential}"  # in the fragment: never sent to a server
    assert tokens.parse_join_link(link) == ("https://class.example.org", credential)
    assert tokens.parse_join_link(f"http://10.0.0.5:8000/school/join#{shown.lower()}") == (
        "http://10.0.0.5:8000/school",
        credential,
    )
    for bad in ("class.example.org/join#" + credential, "https://x.org/join", "https://x.org/other#" + credential):
        with pytest.raises(ValueError):
            tokens.parse_join_link(bad)
