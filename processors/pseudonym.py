"""Patient pseudonyms: keyed SM3 (HMAC-SM3) of ID type and number, computed at the first stage.

The same person gets the same pseudonym at every institution (so cross-institution rules work), and
without the pseudonym key nobody can recompute it from an ID number.
"""

from __future__ import annotations

from yijian.crypto import hmac_sm3


def pseudonym(key: bytes, cert_type: str, certno: str) -> str:
    normalized = certno.strip().upper()
    return hmac_sm3(key, f"{cert_type}:{normalized}".encode()).hex()[:32]
