"""GB 11643 resident ID and GB 32100 USCC checks, against the examples of research/domain.md §2.2."""

import random
from datetime import date

import pytest

from yijian.refdata.identity import (
    check_resident_id,
    check_uscc,
    corrupt_check_digit,
    id_check_char,
    make_resident_id,
    make_uscc,
)
from yijian.refdata.regions import load_regions


@pytest.mark.parametrize("number,birth,sex", [("11010519491231002X", date(1949, 12, 31), "2"), ("360426199101010071", date(1991, 1, 1), "1")])
def test_known_good_examples(number, birth, sex):
    r = check_resident_id(number, sex=sex, event_date=date(2025, 1, 1))
    assert r.valid and r.reason is None
    assert r.birth_date == birth and r.sex == sex and r.region_code == number[:6]


def _with_check(body17: str) -> str:
    return body17 + id_check_char(body17)


@pytest.mark.parametrize("number,kwargs,reason", [
    ("1101051949123100", {}, "invalid_length"),
    ("110105491231002", {}, "legacy_15_digit"),
    ("1101051949123100AX", {}, "invalid_format"),
    ("11010519491231002Y", {}, "invalid_format"),
    ("110105194912310021", {}, "invalid_check_digit"),
    (_with_check("52010219990230001"), {}, "invalid_birth_date"),
    (_with_check("52010218700101001"), {}, "invalid_birth_date"),
    (_with_check("52010220240601001"), {"event_date": date(2024, 5, 31)}, "birth_after_event"),
    (_with_check("99010519491231002"), {}, "unknown_region"),
    (_with_check("52999919491231002"), {}, "unknown_region"),
    ("11010519491231002X", {"sex": "1"}, "sex_mismatch"),
    ("360426199101010071", {"sex": "2"}, "sex_mismatch"),
])
def test_each_failure_has_its_reason(number, kwargs, reason):
    r = check_resident_id(number, **kwargs)
    assert not r.valid and r.reason == reason and r.message


def test_unknown_sex_is_not_compared_and_lowercase_x_accepted():
    assert check_resident_id("11010519491231002x", sex="9").valid
    assert check_resident_id("11010519491231002X", sex="0").valid


def test_historic_region_codes_validate():
    # 520221 水城县 (until 2020), 522423 黔西县 of 毕节地区 (until 2011), 520114 小河区 (2000-2012)
    for region in ("520221", "522423", "520114", "522100"):
        assert check_resident_id(make_resident_id(region, date(1980, 5, 6), "1", random.Random(1)), sex="1").valid


def test_generated_ids_always_valid_and_carry_birth_and_sex():
    rng = random.Random(7)
    regions = load_regions()
    codes = [r.code for r in regions.counties(current=False)]
    for _ in range(2000):
        region = rng.choice(codes)
        birth = date(rng.randint(1920, 2024), rng.randint(1, 12), rng.randint(1, 28))
        sex = rng.choice("12")
        n = make_resident_id(region, birth, sex, rng)
        r = check_resident_id(n, sex=sex, event_date=date(2025, 1, 1))
        assert r.valid, (n, r)
        assert (r.birth_date, r.sex, r.region_code) == (birth, sex, region)
        assert check_resident_id(corrupt_check_digit(n)).reason == "invalid_check_digit"


def test_uscc():
    assert check_uscc("91110000600037341L") is None
    assert check_uscc("91110000600037341M") == "invalid_check_digit"
    assert check_uscc("91110000600037341") == "invalid_length"
    assert check_uscc("9111000060003734IL") == "invalid_format"
    rng = random.Random(3)
    for _ in range(200):
        assert check_uscc(make_uscc("520102", rng)) is None
