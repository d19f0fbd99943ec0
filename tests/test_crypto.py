"""yijian.crypto against the standards' known answers and an independent implementation (gmssl)."""

import hashlib
import hmac
import os
import pickle

import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from gmssl import func as gm_func
from gmssl import sm3 as gm_sm3
from gmssl.sm4 import SM4_ENCRYPT, CryptSM4

from yijian import crypto
from yijian.crypto import IntegrityError, SecretKey

GB_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def test_sm4_block_gbt32907_vector():
    assert crypto.sm4_block_encrypt(GB_KEY, GB_KEY).hex() == "681edf34d206965e86b3e94f536e4246"


def test_sm4_block_gbt32907_million_iterations():
    enc = Cipher(algorithms.SM4(GB_KEY), modes.ECB()).encryptor()
    block = GB_KEY
    for _ in range(1_000_000):
        block = enc.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


def test_sm3_gbt32905_vectors():
    assert crypto.sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert crypto.sm3(b"abcd" * 16).hex() == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_gcm_rfc8998_vector_both_ways():
    out = crypto.sm4_gcm_encrypt(crypto.RFC8998_KEY, crypto.RFC8998_IV, crypto.RFC8998_PT, crypto.RFC8998_AAD)
    assert out == crypto.RFC8998_CT + crypto.RFC8998_TAG
    assert crypto.sm4_gcm_decrypt(crypto.RFC8998_KEY, crypto.RFC8998_IV, out, crypto.RFC8998_AAD) == crypto.RFC8998_PT


def test_sm4_gcm_refuses_tampering_wrong_key_wrong_aad_and_bad_nonce():
    key, nonce = SecretKey.generate(), crypto.new_nonce()
    ct = crypto.sm4_gcm_encrypt(key, nonce, b"record", b"aad")
    flipped = bytes([ct[0] ^ 1]) + ct[1:]
    for args in [(key, nonce, flipped, b"aad"), (SecretKey.generate(), nonce, ct, b"aad"), (key, nonce, ct, b"aaD"), (key, nonce, ct[:10], b"aad")]:
        with pytest.raises(IntegrityError):
            crypto.sm4_gcm_decrypt(*args)
    with pytest.raises(IntegrityError):
        crypto.sm4_gcm_decrypt(key, nonce[:8], ct, b"aad")
    with pytest.raises(ValueError):
        crypto.sm4_gcm_encrypt(key, nonce[:8], b"x")


@pytest.mark.parametrize("key,msg", [(b"", b""), (b"k", b"abc"), (b"k" * 64, b"m" * 1000), (b"k" * 65, b"x"), (os.urandom(16), os.urandom(333))])
def test_hmac_sm3_equals_stdlib(key, msg):
    assert crypto.hmac_sm3(key, msg) == hmac.new(key, msg, "sm3").digest()
    assert crypto.sm3(msg) == hashlib.new("sm3", msg).digest()


def test_sm4_block_and_cbc_equal_gmssl():
    for size in (0, 1, 15, 16, 17, 100, 1000):
        key, iv, pt = os.urandom(16), os.urandom(16), os.urandom(size)
        padder = padding.PKCS7(128).padder()
        padded = padder.update(pt) + padder.finalize()
        enc = Cipher(algorithms.SM4(key), modes.CBC(iv)).encryptor()
        ours = enc.update(padded) + enc.finalize()
        gm = CryptSM4()
        gm.set_key(key, SM4_ENCRYPT)
        assert gm.crypt_cbc(iv, pt) == ours, size
        if size == 16:  # one raw block: gmssl's ECB pads, so compare the first block
            assert gm.crypt_ecb(pt)[:16] == crypto.sm4_block_encrypt(key, pt)


def test_sm3_equals_gmssl():
    for msg in (b"", b"abc", b"abcd" * 16, os.urandom(1000)):
        assert crypto.sm3(msg).hex() == gm_sm3.sm3_hash(gm_func.bytes_to_list(msg))


def test_secret_key_never_shows_its_material():
    key = SecretKey.generate()
    material = key.reveal()
    for text in (repr(key), str(key), f"{key}", repr([key]), repr({"k": key})):
        assert material.hex() not in text.lower() and "***" in text
    with pytest.raises(TypeError) as exc:
        pickle.dumps(key)
    assert material.hex() not in str(exc.value)
    with pytest.raises(ValueError) as exc:
        SecretKey(material[:15])
    assert material[:15].hex() not in str(exc.value)
    with pytest.raises(ValueError) as exc:
        SecretKey.from_hex("zz" + material.hex()[2:])
    assert material.hex()[2:] not in str(exc.value)
    assert key == SecretKey(material) and key != SecretKey.generate()


def test_self_test_passes_and_checks_the_vectors(monkeypatch):
    crypto.self_test()
    monkeypatch.setattr(crypto, "SM3_ABC", b"\x00" * 32)
    with pytest.raises(crypto.CryptoUnavailable):
        crypto.self_test()
