"""Record ids as a stock InvenioRDM shows them: ten base32 characters such as ``23y6y-vh985``.

The emulator's dataset numbers its records; a stock instance shows each number as eight scrambled
Crockford base32 digits and two check digits (the number mod 97), as invenio-pidstore's ``recid_v2``
does. This module is the one place where the two meet.
"""

from __future__ import annotations

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base32, lower case: no i, l, o, u
_DIGITS = 8
_SPACE = 32**_DIGITS
_SCRAMBLE = 0x5DEECE66D  # odd, so it has an inverse modulo 32**8 (a power of two)
_UNSCRAMBLE: int = pow(_SCRAMBLE, -1, _SPACE)


def to_public(number: int) -> str:
    """The ten-character id of the dataset's record ``number`` (0 <= number < 32**8)."""
    if not 0 <= number < _SPACE:
        raise ValueError(f"record number out of range: {number}")
    value = number * _SCRAMBLE % _SPACE
    digits = _encode(value, _DIGITS) + _encode(value % 97, 2)
    return f"{digits[:5]}-{digits[5:]}"


def to_internal(public: str) -> int | None:
    """The dataset's number of a ten-character id, or None when ``public`` is no such id (or fails its check)."""
    text = public.lower().replace("-", "")
    if len(text) != _DIGITS + 2 or any(c not in ALPHABET for c in text):
        return None
    value, check = _decode(text[:_DIGITS]), _decode(text[_DIGITS:])
    if value % 97 != check:
        return None
    return int(value * _UNSCRAMBLE % _SPACE)


def _encode(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value
