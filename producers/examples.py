"""Small, valid example records (README, tests, benchmarks); the province simulator makes realistic ones.

Two families: ``encounter(institution, i)`` & co. give a distinct fictitious patient per ``i`` and a
fixed business time; ``recent_encounter(i, inst=..., **overrides)`` & co. give records of one patient
that happened minutes ago (on time), with any field overridden. ID numbers carry correct GB 11643
check digits.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from yijian.schemas.models import HOSPITAL_TZ, Charge, Diagnosis, Encounter, PatientIdentity, Prescription, PrescriptionItem

def resident_id(region: str, birth: date, serial: int) -> str:
    """An 18-digit ID number with a correct check digit (example data only)."""
    from yijian.refdata.identity import id_check_char

    body = f"{region}{birth:%Y%m%d}{serial % 1000:03d}"
    return body + id_check_char(body)


def patient(i: int = 0) -> dict:
    birth = date(1960, 1, 1) + timedelta(days=(i * 97) % 20000)
    serial = 100 + i % 800
    return {
        "psn_cert_type": "01",
        "certno": resident_id("520102", birth, serial),
        "psn_name": "测试患者",
        "gend": "1" if serial % 2 else "2",
        "brdy": birth,
    }


def encounter(institution: str, i: int = 0, when: datetime | None = None) -> Encounter:
    when = when or datetime(2026, 11, 2, 9, 30, tzinfo=HOSPITAL_TZ)
    return Encounter(
        record_id=f"E{i:08d}",
        version=1,
        status="normal",
        institution_code=institution,
        med_type="outpatient",
        patient=patient(i),
        insutype="390",
        dept_code="03",
        dept_name="内科",
        atddr_code="D520102000001",
        begntime=when,
        diagnoses=[{"diag_code": "J06.900", "diag_name": "急性上呼吸道感染", "maindiag_flag": True}],
        medfee_sumamt=Decimal("128.50"),
        fund_pay_sumamt=Decimal("80.00"),
        psn_selfpay_amt=Decimal("48.50"),
    )


def prescription(institution: str, i: int = 0, when: datetime | None = None) -> Prescription:
    when = when or datetime(2026, 11, 2, 9, 40, tzinfo=HOSPITAL_TZ)
    return Prescription(
        record_id=f"RX{i:08d}",
        version=1,
        status="normal",
        institution_code=institution,
        mdtrt_id=f"E{i:08d}",
        med_type="outpatient",
        patient=patient(i),
        rx_kind="western",
        rx_time=when,
        dept_code="03",
        prsc_dr_code="D520102000001",
        online_flag=False,
        items=[
            {
                "item_no": 1,
                "medins_list_codg": "YP0001",
                "drug_name": "阿莫西林胶囊",
                "spec": "0.25g*24粒",
                "sin_doscnt": Decimal("0.5"),
                "dose_unit": "g",
                "used_frqu": "tid",
                "drug_route": "po",
                "prd_days": 3,
                "cnt": Decimal("1"),
                "cnt_unit": "盒",
                "pric": Decimal("12.8000"),
                "det_item_fee_sumamt": Decimal("12.80"),
                "antibiotic_tier": "unrestricted",
            }
        ],
    )


def charge(institution: str, i: int = 0, when: datetime | None = None) -> Charge:
    when = when or datetime(2026, 11, 2, 9, 45, tzinfo=HOSPITAL_TZ)
    return Charge(
        record_id=f"C{i:08d}",
        version=1,
        status="normal",
        institution_code=institution,
        mdtrt_id=f"E{i:08d}",
        med_type="outpatient",
        patient=patient(i),
        item_type="service",
        medins_list_codg="FW0001",
        item_name="门诊诊查费",
        cnt=Decimal("1"),
        pric=Decimal("10.0000"),
        det_item_fee_sumamt=Decimal("10.00"),
        fulamt_ownpay_amt=Decimal("0.00"),
        fund_pay_amt=Decimal("6.00"),
        fee_ocur_time=when,
        bilg_dept_codg="03",
        bilg_dr_codg="D520102000001",
    )


BUILDERS = {"encounter": encounter, "prescription": prescription, "charge": charge}


# --- recent records of one patient, any field overridden (tests) -------------------------------------
INST = "H52010200001"
VALID_ID = "11010519491231002X"  # GB 11643 example: female, born 1949-12-31


def identity(certno: str = VALID_ID, gend: str = "2", brdy: date = date(1949, 12, 31)) -> PatientIdentity:
    return PatientIdentity(psn_cert_type="01", certno=certno, psn_name="测试患者", gend=gend, brdy=brdy)


def recent_encounter(i: int = 1, inst: str = INST, when: datetime | None = None, **kw) -> Encounter:
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    data = dict(
        record_id=f"E{i}", version=1, status="normal", institution_code=inst, med_type="outpatient",
        patient=identity(), insutype="310", dept_code="NK01", dept_name="内科", atddr_code="D520102000001",
        begntime=when, diagnoses=[Diagnosis(diag_code="LJ18.9", diag_name="肺炎", maindiag_flag=True)],
        medfee_sumamt=Decimal("120.50"), fund_pay_sumamt=Decimal("100.00"), psn_selfpay_amt=Decimal("20.50"),
    )
    data.update(kw)
    return Encounter(**data)


def recent_prescription(i: int = 1, inst: str = INST, when: datetime | None = None, **kw) -> Prescription:
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    item = PrescriptionItem(
        item_no=1, medins_list_codg="YP0001", drug_name="阿莫西林胶囊", spec="0.25g*24粒", sin_doscnt=Decimal("0.5"),
        dose_unit="g", used_frqu="tid", drug_route="po", prd_days=3, cnt=Decimal("1"), cnt_unit="盒",
        pric=Decimal("12.5"), det_item_fee_sumamt=Decimal("12.50"), antibiotic_tier="unrestricted",
    )
    data = dict(
        record_id=f"RX{i}", version=1, status="normal", institution_code=inst, mdtrt_id=f"E{i}", med_type="outpatient",
        patient=identity(), rx_kind="western", rx_time=when, dept_code="NK01", prsc_dr_code="D520102000001",
        online_flag=False, items=[item],
    )
    data.update(kw)
    return Prescription(**data)


def recent_charge(i: int = 1, inst: str = INST, when: datetime | None = None, **kw) -> Charge:
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    data = dict(
        record_id=f"C{i}", version=1, status="normal", institution_code=inst, mdtrt_id=f"E{i}", med_type="outpatient",
        patient=identity(), rxno=f"RX{i}", item_type="drug", medins_list_codg="YP0001", item_name="阿莫西林胶囊",
        cnt=Decimal("2"), pric=Decimal("12.5"), det_item_fee_sumamt=Decimal("25.00"), fulamt_ownpay_amt=Decimal("0"),
        fund_pay_amt=Decimal("25.00"), fee_ocur_time=when, bilg_dept_codg="NK01", bilg_dr_codg="D520102000001",
    )
    data.update(kw)
    return Charge(**data)
