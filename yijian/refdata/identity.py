"""Resident ID numbers (GB 11643-1999) and unified social credit codes (GB 32100-2015).

:func:`check_resident_id` returns a specific reason code for the first failure found, in this order:

=====================  ==============================================================
``invalid_length``     not 18 characters (``legacy_15_digit`` for an old 15-digit number)
``invalid_format``     not 17 digits followed by a digit or ``X``
``invalid_check_digit`` ISO 7064 MOD 11-2 check character wrong
``invalid_birth_date`` birth segment is not a real date, or is before 1880
``birth_after_event``  birth date after the event date (or after today)
``unknown_region``     first 6 digits are not a known (current or historic) region code
``sex_mismatch``       digit 17 parity (odd 男 1 / even 女 2) differs from the declared sex
=====================  ==============================================================
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from yijian.refdata.regions import RegionTable, load_regions

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"

ID_REASONS = {
    "invalid_length": "证件号码长度不是18位 / ID number is not 18 characters long",
    "legacy_15_digit": "15位旧身份证号, 请换用18位号码 / legacy 15-digit ID number; send the 18-digit number",
    "invalid_format": "证件号码格式错误(应为17位数字+数字或X) / ID number must be 17 digits plus a digit or X",
    "invalid_check_digit": "身份证校验码错误(GB 11643) / wrong check digit (GB 11643, ISO 7064 MOD 11-2)",
    "invalid_birth_date": "身份证中的出生日期不存在 / the birth date in the ID number is not a real date",
    "birth_after_event": "出生日期晚于就诊日期 / birth date is after the event date",
    "unknown_region": "身份证地址码不是已知行政区划代码 / region code of the ID number is unknown",
    "sex_mismatch": "身份证性别位与性别不符 / sex digit of the ID number differs from the declared sex",
}


def id_check_char(body17: str) -> str:
    """Check character of the 17-digit body."""
    return CHECK_CHARS[sum(int(c) * w for c, w in zip(body17, WEIGHTS)) % 11]


@dataclass(frozen=True, slots=True)
class IdCheck:
    valid: bool
    reason: str | None = None  # one of ID_REASONS, None when valid
    birth_date: date | None = None
    sex: str | None = None  # "1" 男 / "2" 女 from digit 17
    region_code: str = ""

    @property
    def message(self) -> str:
        return ID_REASONS.get(self.reason or "", "")


def check_resident_id(
    number: str,
    sex: str | None = None,
    event_date: date | None = None,
    regions: RegionTable | None = None,
) -> IdCheck:
    """Validate an 18-digit resident ID number; ``sex`` is GB/T 2261.1 (1 男, 2 女; 0/9 not compared)."""
    n = (number or "").strip().upper()
    if len(n) != 18:
        return IdCheck(False, "legacy_15_digit" if len(n) == 15 and n.isdigit() else "invalid_length")
    body, check = n[:17], n[17]
    if not body.isdigit() or not (check.isdigit() or check == "X"):
        return IdCheck(False, "invalid_format")
    if id_check_char(body) != check:
        return IdCheck(False, "invalid_check_digit")
    region = body[:6]
    id_sex = "1" if int(body[16]) % 2 else "2"
    try:
        birth = date(int(body[6:10]), int(body[10:12]), int(body[12:14]))
    except ValueError:
        return IdCheck(False, "invalid_birth_date", region_code=region, sex=id_sex)
    if birth.year < 1880:
        return IdCheck(False, "invalid_birth_date", region_code=region, sex=id_sex)
    if birth > (event_date or date.today()):
        return IdCheck(False, "birth_after_event", birth, id_sex, region)
    table = regions if regions is not None else load_regions()
    if not table.valid_for_id(region):
        return IdCheck(False, "unknown_region", birth, id_sex, region)
    if sex in ("1", "2") and sex != id_sex:
        return IdCheck(False, "sex_mismatch", birth, id_sex, region)
    return IdCheck(True, None, birth, id_sex, region)


def make_resident_id(region: str, birth: date, sex: str, rng: random.Random) -> str:
    """A valid ID number for ``region`` (6 digits), ``birth`` and ``sex`` ("1" 男 / "2" 女)."""
    seq = rng.randrange(0, 100)
    digit = rng.randrange(0, 10, 2) + (1 if sex == "1" else 0)
    body = f"{region}{birth:%Y%m%d}{seq:02d}{digit}"
    return body + id_check_char(body)


def corrupt_check_digit(number: str) -> str:
    """The same ID number with a wrong check character (for fault injection)."""
    right = number[17]
    wrong = CHECK_CHARS[(CHECK_CHARS.index(right) + 1) % 11]
    return number[:17] + wrong


# --- USCC (GB 32100-2015) ---------------------------------------------------------------------------
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(body17: str) -> str:
    s = sum(USCC_ALPHABET.index(c) * w for c, w in zip(body17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - s % 31) % 31]


def check_uscc(code: str) -> str | None:
    """None if ``code`` is a valid unified social credit code, else ``invalid_length`` /
    ``invalid_format`` / ``invalid_check_digit``."""
    c = (code or "").strip().upper()
    if len(c) != 18:
        return "invalid_length"
    if any(ch not in USCC_ALPHABET for ch in c) or not c[2:8].isdigit():
        return "invalid_format"
    if uscc_check_char(c[:17]) != c[17]:
        return "invalid_check_digit"
    return None


def make_uscc(region: str, rng: random.Random, prefix: str = "12") -> str:
    """A valid USCC (default ``12``: 机构编制/事业单位, typical of public hospitals)."""
    body = prefix + region + "".join(rng.choice(USCC_ALPHABET) for _ in range(9))
    return body + uscc_check_char(body)


ID_REASON_TEXT = {
    "invalid_length": "长度不是18位 / not 18 characters",
    "legacy_15_digit": "15位旧号码 / legacy 15-digit number",
    "invalid_format": "含非法字符 / invalid characters",
    "invalid_check_digit": "校验位错误 / wrong check digit",
    "invalid_birth_date": "出生日期段无效 / invalid birth date segment",
    "birth_after_event": "出生日期晚于就诊 / birth date after the event",
    "unknown_region": "地区码不存在 / unknown region code",
}


def resident_id_problems(certno: str, sex: str, birth: date, on: date) -> list[tuple[str, str, str, str]]:
    """(quality code, dimension, field, detail) for each way a resident ID disagrees with GB 11643 or
    with the record. The same reasons reach hospitals from `yijian check` and from the platform.
    Details never quote the number itself."""
    result = check_resident_id(certno, None, on)
    if not result.valid:
        return [("invalid_id_number", "validity", "patient.certno", f"{result.reason}: {ID_REASON_TEXT.get(result.reason, result.reason)}")]
    problems = []
    if sex in ("1", "2") and sex != result.sex:
        problems.append(("sex_mismatch", "consistency", "patient.gend", f"gend={sex}, 身份证第17位 / ID digit 17 → {result.sex}"))
    if result.birth_date != birth:
        problems.append(("birth_mismatch", "consistency", "patient.brdy", f"brdy={birth}, 身份证 / ID → {result.birth_date}"))
    return problems
