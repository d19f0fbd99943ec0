"""Resident ID checks applied to every patient (GB 11643): the processors' view of yijian.refdata."""

from __future__ import annotations

from datetime import date

_W = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id_problems(certno: str, sex: str, birth: date, on: date) -> list[tuple[str, str, str]]:
    """(code, field, detail) for each way a resident ID number fails GB 11643 or disagrees with the record."""
    n = certno.strip().upper()
    if len(n) != 18 or not n[:17].isdigit() or not (n[17].isdigit() or n[17] == "X"):
        return [("invalid_id_number", "patient.certno", f"长度或字符不符 length/characters ({len(n)})")]
    if "10X98765432"[sum(int(d) * w for d, w in zip(n[:17], _W)) % 11] != n[17]:
        return [("invalid_id_number", "patient.certno", "校验位错误 check digit")]
    try:
        born = date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        return [("invalid_id_number", "patient.certno", "出生日期段无效 birth date segment")]
    problems = []
    if born > on:
        problems.append(("invalid_id_number", "patient.certno", "出生日期晚于就诊 birth date after the event"))
    if born != birth:
        problems.append(("birth_mismatch", "patient.brdy", f"{birth} ≠ {born}"))
    id_sex = "1" if int(n[16]) % 2 else "2"
    if sex in ("1", "2") and sex != id_sex:
        problems.append(("sex_mismatch", "patient.gend", f"gend={sex}, ID digit 17 says {id_sex}"))
    return problems
