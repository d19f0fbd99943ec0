"""National cryptography (国密) for yijian, in one module.

- SM4-GCM (GB/T 32907 block cipher, GCM mode per RFC 8998) for records in transit and at rest,
  through ``cryptography`` (its wheel bundles an OpenSSL with SM4-GCM; Debian's OpenSSL 3.0 lacks it);
- SM3 (GB/T 32905) and HMAC-SM3 for integrity and patient pseudonyms.

``self_test()`` checks the RFC 8998 SM4-GCM vector, the GB/T 32907 SM4 vector and the GB/T 32905 SM3
vector; every entry point runs it once and refuses to work without it.
"""

from __future__ import annotations

import hmac as _hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16


class CryptoUnavailable(RuntimeError):
    """The crypto backend failed its known-answer self-test: refuse to run."""


class IntegrityError(ValueError):
    """Authentication failed: wrong key, tampered ciphertext or tampered associated data."""


class SecretKey:
    """Key material that never shows itself in repr, str, logs or exceptions."""

    __slots__ = ("_b",)

    def __init__(self, material: bytes) -> None:
        if not isinstance(material, (bytes, bytearray)) or len(material) != KEY_BYTES:
            raise ValueError(f"an SM4 key is {KEY_BYTES} bytes")
        self._b = bytes(material)

    @classmethod
    def generate(cls) -> "SecretKey":
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_hex(cls, text: str) -> "SecretKey":
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise ValueError("not a 32-hex-digit SM4 key") from None

    def reveal(self) -> bytes:
        return self._b

    def __repr__(self) -> str:
        return "SecretKey(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretKey) and _hmac.compare_digest(self._b, other._b)

    def __hash__(self) -> int:
        return hash(sm3(self._b))

    def __reduce__(self):
        raise TypeError("SecretKey is not picklable")


def _key(k: SecretKey | bytes) -> bytes:
    return k.reveal() if isinstance(k, SecretKey) else k


def sm4_gcm_encrypt(key: SecretKey | bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """Ciphertext followed by the 16-byte tag."""
    _ensure_self_tested()
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"SM4-GCM nonce must be {NONCE_BYTES} bytes")
    enc = Cipher(algorithms.SM4(_key(key)), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    return enc.update(plaintext) + enc.finalize() + enc.tag


def sm4_gcm_decrypt(key: SecretKey | bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    """Inverse of :func:`sm4_gcm_encrypt`; raises IntegrityError if anything was altered."""
    _ensure_self_tested()
    if len(nonce) != NONCE_BYTES:
        raise IntegrityError(f"SM4-GCM nonce must be {NONCE_BYTES} bytes")
    if len(data) < TAG_BYTES:
        raise IntegrityError("ciphertext shorter than the GCM tag")
    dec = Cipher(algorithms.SM4(_key(key)), modes.GCM(nonce, data[-TAG_BYTES:])).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(data[:-TAG_BYTES]) + dec.finalize()
    except InvalidTag:
        raise IntegrityError("SM4-GCM authentication failed (wrong key or tampered data)") from None


def sm4_block_encrypt(key: bytes, block: bytes) -> bytes:
    """One raw SM4 block (ECB); for known-answer tests only."""
    enc = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    return enc.update(block) + enc.finalize()


def sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


def hmac_sm3(key: SecretKey | bytes, data: bytes) -> bytes:
    from cryptography.hazmat.primitives import hmac as chmac

    h = chmac.HMAC(_key(key), hashes.SM3())
    h.update(data)
    return h.finalize()


def new_nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


# --- known-answer self-test ------------------------------------------------------------------------
RFC8998_KEY = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
RFC8998_IV = bytes.fromhex("00001234567800000000ABCD")
RFC8998_AAD = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
RFC8998_PT = bytes.fromhex(
    "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
    "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
)
RFC8998_CT = bytes.fromhex(
    "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
    "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
)
RFC8998_TAG = bytes.fromhex("83DE3541E4C2B58177E065A9BF7B62EC")
SM4_VECTOR = (bytes.fromhex("0123456789abcdeffedcba9876543210"), bytes.fromhex("681edf34d206965e86b3e94f536e4246"))
SM3_ABC = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")

_self_tested = False


def self_test() -> None:
    """Raise CryptoUnavailable unless SM4, SM4-GCM and SM3 give the standard answers."""
    global _self_tested
    try:
        k, expected = SM4_VECTOR
        ok_block = sm4_block_encrypt(k, k) == expected
        enc = Cipher(algorithms.SM4(RFC8998_KEY), modes.GCM(RFC8998_IV)).encryptor()
        enc.authenticate_additional_data(RFC8998_AAD)
        ct = enc.update(RFC8998_PT) + enc.finalize()
        ok_gcm = ct == RFC8998_CT and enc.tag == RFC8998_TAG
        ok_sm3 = sm3(b"abc") == SM3_ABC
    except Exception as exc:  # UnsupportedAlgorithm on an OpenSSL without SM4-GCM
        raise CryptoUnavailable(f"SM crypto backend unusable: {type(exc).__name__}: {exc}") from None
    if not (ok_block and ok_gcm and ok_sm3):
        raise CryptoUnavailable(f"SM crypto self-test failed (SM4 {ok_block}, SM4-GCM {ok_gcm}, SM3 {ok_sm3})")
    _self_tested = True


def _ensure_self_tested() -> None:
    if not _self_tested:
        self_test()
