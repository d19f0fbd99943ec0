"""Region table (history-aware, any province), national code formats of the fixtures, RefData updates."""

import json

import pytest

from yijian.refdata import RefData, Update, load_csv
from yijian.refdata.catalog import FIXTURES, CodeMapEntry, Institution
from yijian.refdata.formats import drug_kind, matches
from yijian.refdata.regions import RegionTable, load_regions


def test_guizhou_has_9_prefectures_and_88_counties():
    r = load_regions()
    prefs = r.prefectures()
    assert sorted(p.code for p in prefs) == ["520100", "520200", "520300", "520400", "520500", "520600", "522300", "522600", "522700"]
    counties = r.counties()
    assert len(counties) == 88
    per_city = {p.code: len(r.counties_of(p.code)) for p in prefs}
    assert per_city == {"520100": 10, "520200": 4, "520300": 14, "520400": 6, "520500": 8, "520600": 10,
                        "522300": 8, "522600": 16, "522700": 12}


def test_historic_codes_map_forward():
    r = load_regions()
    assert r.current_code("520221") == "520204" and r.name("520204") == "水城区"
    assert r.city_of("520221") == "520200" and r.county_of("520221") == "520204"
    assert r.current_code("522423") == "520581"  # 黔西县 (毕节地区) → 黔西县 (毕节市) → 黔西市
    assert r.city_of("522401") == "520500" and r.city_of("522100") == "520300"
    assert r.county_of("520100") == "" and r.city_of("999999") == ""
    assert not r.get("520221").current and r.get("520204").current


def test_any_province_file_loads(tmp_path):
    f = tmp_path / "regions_53.csv"
    f.write_text("code,name,level,parent,valid_from,valid_to,successor\n530000,云南省,province,,,,\n"
                 "530100,昆明市,prefecture,530000,,,\n530102,五华区,county,530100,,,\n530111,官渡区,county,530100,,,\n"
                 "530121,呈贡县,county,530100,,2011-05-20,530114\n530114,呈贡区,county,530100,2011-05-20,,\n")
    r = RegionTable.load(f)
    assert len(r.counties()) == 3 and r.city_of("530121") == "530100" and r.county_of("530121") == "530114"
    assert r.valid_for_id("530121") and not r.valid_for_id("530199") and r.valid_for_id("520102")  # other provinces: prefix only
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,level,parent,valid_from,valid_to,successor\n53010,x,county,,,,\n")
    with pytest.raises(ValueError, match="6"):
        RegionTable.load(bad)


def test_fixture_codes_have_national_formats():
    rd = RefData.fixtures()
    drugs = rd.rows("drugs")
    assert len(drugs) >= 80
    for d in drugs:
        assert matches("drug", d.code) and drug_kind(d.code) == d.kind, d.code
    kinds = {d.kind for d in drugs}
    assert kinds == {"western", "tcm_patent", "tcm_decoction"}
    assert {d.antibiotic_tier for d in drugs} >= {"unrestricted", "restricted", "special"}
    assert {d.controlled_class for d in drugs} >= {"narcotic", "psychotropic1", "psychotropic2"}
    assert {d.sex for d in drugs} == {"", "1", "2"} and any(d.chronic for d in drugs)
    gancao = next(d for d in drugs if d.generic_name == "甘草")
    assert "甘遂" in gancao.incompatible_with
    for table, kind, n in (("diagnoses", "diagnosis", 60), ("operations", "operation", 20), ("services", "service", 40),
                           ("consumables", "consumable", 15), ("departments", "department", 15)):
        rows = rd.rows(table)
        assert len(rows) >= n
        for row in rows:
            assert matches(kind, row.code), (table, row.code)
    diags = {d.code: d for d in rd.rows("diagnoses")}
    assert diags["O80.000"].sex == "2" and diags["N40.x00"].sex == "1" and diags["P59.900"].age_max == 0
    assert matches("diagnosis", "I10.x00") and not matches("diagnosis", "J18.9000") and not matches("service", "001109000010")
    assert matches("institution", "H52010200001") and not matches("institution", "X52010200001")


def test_load_csv_reports_the_bad_line(tmp_path):
    f = tmp_path / "institutions.csv"
    f.write_text("code,name,county_code,city_code,level,type,connected_since\n"
                 "H52010200001,南明区人民医院,520102,520100,2,general,2024-01-01\n"
                 "H5201020000,坏编码,520102,520100,2,general,\n")
    with pytest.raises(ValueError, match=":3:"):
        load_csv(f, "institutions")
    with pytest.raises(ValueError, match="unknown reference table"):
        load_csv(f, "nope")


def test_updates_roundtrip_replace_and_delete():
    inst = Institution(code="H52010200001", name="南明区人民医院", county_code="520221", level=2)
    maps = [CodeMapEntry(institution_code=inst.code, kind="drug", local_code="YP1", national_code="T100000000"),
            CodeMapEntry(institution_code=inst.code, kind="diagnosis", local_code="ZD1", national_code="J18.900")]
    rd = RefData.from_rows({"institutions": [inst], "code_maps": maps})
    assert rd.map_code(inst.code, "drug", "YP1") == "T100000000"
    assert rd.map_code(inst.code, "drug", "YP2") is None
    assert rd.region_of(inst.code) == ("520204", "520200")  # historic county code rolls up
    ups = rd.to_updates()
    assert {u.key for u in ups} == {"institutions:H52010200001", "code_maps:H52010200001"}
    rd2 = RefData()
    for u in ups:
        rd2.apply(Update.from_json(u.to_json()))  # JSON round trip as on the refdata topic
        rd2.apply(json.loads(u.to_json()))
    assert rd2.fingerprint() == rd.fingerprint()
    rd2.apply(Update(table="code_maps", partition=inst.code, version="v2",
                     rows=[{"institution_code": inst.code, "kind": "drug", "local_code": "YP2", "national_code": "T100000000"}]))
    assert rd2.version == "v2" and rd2.map_code(inst.code, "drug", "YP2") and rd2.map_code(inst.code, "drug", "YP1") is None
    rd2.apply({"table": "code_maps", "partition": inst.code, "op": "delete"})
    assert rd2.code_map(inst.code, "drug") == {}
    with pytest.raises(ValueError):
        rd2.apply({"table": "bogus", "partition": "*"})


def test_fixture_folder_loads_per_table():
    for table in ("drugs", "diagnoses", "operations", "services", "consumables", "departments"):
        assert load_csv(FIXTURES / f"{table}.csv", table)
