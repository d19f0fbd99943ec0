"""Sample source records (valid by default) for examples, benchmarks and tests; the province simulator makes realistic ones."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from yijian.schemas.models import Charge, Diagnosis, Encounter, PatientIdentity, Prescription, PrescriptionItem

INST = "H52010200001"
VALID_ID = "11010519491231002X"  # GB 11643 example: female, born 1949-12-31


def patient(certno: str = VALID_ID, gend: str = "2", brdy: date = date(1949, 12, 31)) -> PatientIdentity:
    return PatientIdentity(psn_cert_type="01", certno=certno, psn_name="测试患者", gend=gend, brdy=brdy)


def encounter(i: int = 1, inst: str = INST, when: datetime | None = None, **kw) -> Encounter:
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    data = dict(
        record_id=f"E{i}", version=1, status="normal", institution_code=inst, med_type="outpatient",
        patient=patient(), insutype="310", dept_code="NK01", dept_name="内科", atddr_code="D520102000001",
        begntime=when, diagnoses=[Diagnosis(diag_code="LJ18.9", diag_name="肺炎", maindiag_flag=True)],
        medfee_sumamt=Decimal("120.50"), fund_pay_sumamt=Decimal("100.00"), psn_selfpay_amt=Decimal("20.50"),
    )
    data.update(kw)
    return Encounter(**data)


def prescription(i: int = 1, inst: str = INST, when: datetime | None = None, **kw) -> Prescription:
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    item = PrescriptionItem(
        item_no=1, medins_list_codg="YP0001", drug_name="阿莫西林胶囊", spec="0.25g*24粒", sin_doscnt=Decimal("0.5"),
        dose_unit="g", used_frqu="tid", drug_route="po", prd_days=3, cnt=Decimal("1"), cnt_unit="盒",
        pric=Decimal("12.5"), det_item_fee_sumamt=Decimal("12.50"), antibiotic_tier="unrestricted",
    )
    data = dict(
        record_id=f"RX{i}", version=1, status="normal", institution_code=inst, mdtrt_id=f"E{i}", med_type="outpatient",
        patient=patient(), rx_kind="western", rx_time=when, dept_code="NK01", prsc_dr_code="D520102000001",
        online_flag=False, items=[item],
    )
    data.update(kw)
    return Prescription(**data)


def charge(i: int = 1, inst: str = INST, when: datetime | None = None, **kw) -> Charge:
    when = when or datetime.now(timezone.utc) - timedelta(minutes=5)
    data = dict(
        record_id=f"C{i}", version=1, status="normal", institution_code=inst, mdtrt_id=f"E{i}", med_type="outpatient",
        patient=patient(), rxno=f"RX{i}", item_type="drug", medins_list_codg="YP0001", item_name="阿莫西林胶囊",
        cnt=Decimal("2"), pric=Decimal("12.5"), det_item_fee_sumamt=Decimal("25.00"), fulamt_ownpay_amt=Decimal("0"),
        fund_pay_amt=Decimal("25.00"), fee_ocur_time=when, bilg_dept_codg="NK01", bilg_dr_codg="D520102000001",
    )
    data.update(kw)
    return Charge(**data)
