"""Administrative divisions (GB/T 2260) with validity dates, for any province.

A province file (CSV) has columns ``code,name,level,parent,valid_from,valid_to,successor``:

- ``level``: ``province`` / ``prefecture`` / ``county``;
- ``parent``: the code of the enclosing division *at the time the code was valid*;
- ``valid_from`` / ``valid_to``: ISO dates (empty = open); a code with ``valid_to`` set is historic;
- ``successor``: for a historic code, the code that replaced it (chains are followed, e.g.
  522423 黔西县 → 520522 黔西县 → 520581 黔西市).

Resident ID numbers keep the region code they were issued under, so validation accepts historic codes;
analytics roll every code (current or historic) up to the *current* county and prefecture.
Guizhou (52) is the shipped file; :func:`load_regions` takes any other.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent

# GB/T 2260 province-level codes (first two digits of any region code), for ID numbers from elsewhere.
PROVINCES: dict[str, str] = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省", "33": "浙江省",
    "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省", "41": "河南省", "42": "湖北省",
    "43": "湖南省", "44": "广东省", "45": "广西壮族自治区", "46": "海南省", "50": "重庆市", "51": "四川省",
    "52": "贵州省", "53": "云南省", "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省",
    "64": "宁夏回族自治区", "65": "新疆维吾尔自治区", "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}


@dataclass(frozen=True, slots=True)
class Region:
    code: str
    name: str
    level: str  # province / prefecture / county
    parent: str
    valid_from: date | None
    valid_to: date | None
    successor: str

    @property
    def current(self) -> bool:
        return self.valid_to is None


def _date(s: str) -> date | None:
    s = (s or "").strip()
    return date.fromisoformat(s) if s else None


class RegionTable:
    """Regions of one or more provinces with history; lookups by code."""

    def __init__(self, regions: list[Region]):
        self.by_code: dict[str, Region] = {}
        for r in regions:
            self.by_code[r.code] = r
        self.provinces = {r.code[:2] for r in regions}
        for r in regions:
            if r.successor and r.successor not in self.by_code:
                raise ValueError(f"区划 {r.code} 的继任代码 {r.successor} 不在表中 / successor {r.successor} of {r.code} is not in the table")

    @classmethod
    def load(cls, *paths: str | Path) -> "RegionTable":
        regions: list[Region] = []
        for path in paths:
            with open(path, newline="", encoding="utf-8-sig") as f:
                for row in csv.DictReader(f):
                    code = row["code"].strip()
                    if len(code) != 6 or not code.isdigit():
                        raise ValueError(f"{path}: 区划代码须为6位数字 / region code must be 6 digits: {code!r}")
                    if row["level"] not in ("province", "prefecture", "county"):
                        raise ValueError(f"{path}: unknown level {row['level']!r} for {code}")
                    regions.append(Region(code, row["name"].strip(), row["level"], row.get("parent", "").strip(),
                                          _date(row.get("valid_from", "")), _date(row.get("valid_to", "")),
                                          row.get("successor", "").strip()))
        return cls(regions)

    # --- lookups -----------------------------------------------------------------------------------
    def get(self, code: str) -> Region | None:
        return self.by_code.get(code)

    def name(self, code: str) -> str:
        r = self.by_code.get(code)
        return r.name if r else ""

    def is_known(self, code: str) -> bool:
        """True for any code of the table, current or historic."""
        return code in self.by_code

    def current_code(self, code: str) -> str:
        """Follow successors to the code in force today ('' if unknown)."""
        seen = 0
        r = self.by_code.get(code)
        while r is not None and r.successor and seen < 16:
            r = self.by_code.get(r.successor)
            seen += 1
        return r.code if r else ""

    def county_of(self, code: str) -> str:
        """Current county-level code for a county code (historic codes mapped forward); '' otherwise."""
        cur = self.current_code(code)
        r = self.by_code.get(cur)
        return cur if r is not None and r.level == "county" else ""

    def city_of(self, code: str) -> str:
        """Current prefecture (地级) code for any county or prefecture code, historic ones included."""
        cur = self.current_code(code)
        r = self.by_code.get(cur)
        if r is None:
            return ""
        if r.level == "prefecture":
            return r.code
        if r.level == "county":
            return self.current_code(r.parent) if r.parent else ""
        return ""

    def counties(self, current: bool = True) -> list[Region]:
        return [r for r in self.by_code.values() if r.level == "county" and (r.current or not current)]

    def prefectures(self, current: bool = True) -> list[Region]:
        return [r for r in self.by_code.values() if r.level == "prefecture" and (r.current or not current)]

    def counties_of(self, city: str) -> list[Region]:
        return [r for r in self.counties() if r.parent == city]

    def valid_for_id(self, code: str) -> bool:
        """Is ``code`` a plausible issuing region of a resident ID number?

        For provinces covered by this table the code must be a known (current or historic) code or the
        ``01`` 市辖区 code of a known prefecture; for other provinces only the province prefix is checked
        (the table does not list their divisions).
        """
        if len(code) != 6 or not code.isdigit() or code[:2] not in PROVINCES:
            return False
        if code[:2] not in self.provinces:
            return True
        if code in self.by_code:
            return True
        return code.endswith("01") and (code[:4] + "00") in self.by_code


@lru_cache(maxsize=8)
def load_regions(path: str | None = None) -> RegionTable:
    """The region table from ``path`` (a province CSV), default the shipped Guizhou file."""
    return RegionTable.load(path or HERE / "regions_52.csv")
