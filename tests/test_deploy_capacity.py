"""The capacity model (deploy/capacity.py): arithmetic properties, both scenarios, the CLI, and that
the deployed sizes follow from it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from yijian.deploy.capacity import GUIZHOU, NATION, Inputs, Plan, main, plan, render_table

REPO = Path(__file__).resolve().parents[1]
COUNTS = (
    "processor_replicas",
    "processor_max_replicas",
    "sink_replicas",
    "sink_max_replicas",
    "partitions",
    "brokers",
    "clickhouse_shards",
)

loads = st.fixed_dictionaries(
    {
        "visits_per_day": st.floats(min_value=0, max_value=1e9),
        "avg_visits_per_day": st.floats(min_value=0, max_value=1e9),
        "records_per_visit": st.floats(min_value=0, max_value=500),
        "peak_hour_share": st.floats(min_value=1 / 24, max_value=1),
        "catchup_factor": st.floats(min_value=1, max_value=10),
    }
)


def _worker_rate(i: Inputs) -> float:
    """What one worker carries: limited by records or by Kafka messages, whichever binds first."""
    return min(i.worker_records_per_s, i.worker_envelopes_per_s * i.records_per_envelope)


def _invariants(i: Inputs) -> None:
    p = plan(i)
    assert p.worker_effective_records_per_s == pytest.approx(_worker_rate(i))
    assert p.processor_replicas >= i.min_replicas and p.sink_replicas >= i.min_replicas
    assert p.processor_max_replicas >= p.processor_replicas
    assert p.sink_max_replicas >= p.sink_replicas
    # a replica without a partition idles: partitions cover the widest autoscale ceiling
    assert p.partitions >= max(p.processor_max_replicas, p.sink_max_replicas)
    assert p.partitions >= i.min_partitions
    assert p.partitions >= p.brokers, "every broker leads at least one partition"
    assert p.partitions & (p.partitions - 1) == 0, "a power of two"
    assert p.brokers >= i.replication
    assert p.clickhouse_shards >= 1 and p.clickhouse_replicas == i.ch_replicas
    # the steady-state replicas really carry the peak at the target utilisation
    assert p.processor_replicas * _worker_rate(i) * i.target_utilisation >= p.peak_records_per_s * (1 - 1e-9)
    assert p.processor_max_replicas * _worker_rate(i) >= p.peak_records_per_s * i.catchup_factor * (1 - 1e-9)
    # storage fits
    assert p.brokers * i.broker_disk_tb * i.disk_fill >= p.kafka_tb * (1 - 1e-9)
    assert p.clickhouse_shards * i.ch_shard_disk_tb * i.disk_fill >= p.clickhouse_tb * (1 - 1e-9)


@settings(max_examples=200, deadline=None)
@given(loads)
def test_invariants_hold_for_any_load(load):
    _invariants(replace(GUIZHOU, **load))


@settings(max_examples=150, deadline=None)
@given(loads, st.floats(min_value=1.0, max_value=50.0))
def test_more_load_never_needs_fewer_resources(load, factor):
    small = replace(GUIZHOU, **load)
    big = replace(small, visits_per_day=small.visits_per_day * factor, avg_visits_per_day=small.avg_visits_per_day * factor)
    ps, pb = plan(small), plan(big)
    for field in COUNTS:
        assert getattr(pb, field) >= getattr(ps, field), field


@pytest.mark.parametrize(
    "field", ["worker_records_per_s", "worker_envelopes_per_s", "records_per_envelope", "sink_records_per_s", "broker_disk_tb", "ch_shard_disk_tb"]
)
def test_faster_or_bigger_machines_never_need_more_of_them(field):
    base = plan(NATION)
    better = plan(replace(NATION, **{field: getattr(NATION, field) * 2}))
    for count in COUNTS:
        assert getattr(better, count) <= getattr(base, count), (field, count)


def test_zero_load_gives_the_minimum_footprint():
    p = plan(replace(GUIZHOU, visits_per_day=0, avg_visits_per_day=0))
    assert p.processor_replicas == p.processor_max_replicas == GUIZHOU.min_replicas
    assert p.brokers == GUIZHOU.replication
    assert p.partitions == GUIZHOU.min_partitions
    assert p.clickhouse_shards == 1


def test_the_country_needs_at_least_what_a_province_needs():
    gz, cn = plan(GUIZHOU), plan(NATION)
    assert cn.peak_records_per_s > 20 * gz.peak_records_per_s
    for field in COUNTS:
        assert getattr(cn, field) >= getattr(gz, field), field
    assert cn.brokers > gz.brokers and cn.clickhouse_shards > gz.clickhouse_shards
    _invariants(GUIZHOU)
    _invariants(NATION)


def test_known_figures_of_the_documented_scenarios():
    gz = plan(GUIZHOU)
    # 1M visits × 20 records × 15 % in the busiest hour
    assert gz.peak_records_per_s == pytest.approx(1_000_000 * 20 * 0.15 / 3600)
    cn = plan(NATION)
    assert cn.avg_records_per_day == 18_000_000 * 20
    assert cn.peak_records_per_s == pytest.approx(35_000_000 * 20 * 0.12 / 3600)


@pytest.mark.parametrize("field", ["worker_records_per_s", "worker_envelopes_per_s", "records_per_envelope", "sink_records_per_s"])
@pytest.mark.parametrize("value", [0, -1.0])
def test_bad_inputs_are_refused(field, value):
    with pytest.raises(ValueError):
        plan(replace(GUIZHOU, **{field: value}))


rates = st.floats(min_value=1.0, max_value=1e6)


@settings(max_examples=200, deadline=None)
@given(rates, rates, st.floats(min_value=0.01, max_value=1_000))
def test_a_worker_carries_the_smaller_of_its_two_limits(records_per_s, envelopes_per_s, per_envelope):
    i = replace(NATION, worker_records_per_s=records_per_s, worker_envelopes_per_s=envelopes_per_s, records_per_envelope=per_envelope)
    p = plan(i)
    assert p.worker_effective_records_per_s <= records_per_s
    assert p.worker_effective_records_per_s <= envelopes_per_s * per_envelope * (1 + 1e-12)
    assert p.worker_effective_records_per_s in (records_per_s, envelopes_per_s * per_envelope)
    _invariants(i)


def test_only_the_binding_limit_changes_the_plan():
    # (the country: enough load that the replica counts are above their floor)
    # one record per envelope: the message rate binds, a faster record path alone buys nothing
    by_messages = replace(NATION, records_per_envelope=1.0)
    assert plan(replace(by_messages, worker_records_per_s=by_messages.worker_records_per_s * 10)) == plan(by_messages)
    assert plan(replace(by_messages, worker_envelopes_per_s=by_messages.worker_envelopes_per_s * 2)).processor_max_replicas < plan(by_messages).processor_max_replicas
    # full envelopes (a backfill): the record rate binds, a faster message path alone buys nothing
    by_records = replace(NATION, records_per_envelope=500.0)
    assert plan(replace(by_records, worker_envelopes_per_s=by_records.worker_envelopes_per_s * 10)) == plan(by_records)
    assert plan(replace(by_records, worker_records_per_s=by_records.worker_records_per_s * 2)).processor_max_replicas < plan(by_records).processor_max_replicas


@settings(max_examples=150, deadline=None)
@given(loads, st.floats(min_value=0.01, max_value=500), st.floats(min_value=0.01, max_value=500))
def test_fewer_records_per_envelope_never_needs_fewer_resources(load, a, b):
    fuller, emptier = (a, b) if a >= b else (b, a)
    pf = plan(replace(GUIZHOU, **load, records_per_envelope=fuller))
    pe = plan(replace(GUIZHOU, **load, records_per_envelope=emptier))
    for field in COUNTS:
        assert getattr(pe, field) >= getattr(pf, field), field


def test_guizhou_sent_as_it_happens_needs_more_workers_than_in_full_envelopes():
    live = plan(replace(GUIZHOU, records_per_envelope=1.0))
    batched = plan(replace(GUIZHOU, records_per_envelope=100.0))
    assert live.processor_replicas > batched.processor_replicas
    assert live.processor_max_replicas > batched.processor_max_replicas
    assert live.partitions >= batched.partitions
    # the default is the live case: hospitals send records as they happen
    assert plan(GUIZHOU) == live


def test_table_shows_both_scenarios_with_assumptions_next_to_numbers(capsys):
    text = render_table()
    assert GUIZHOU.name in text and NATION.name in text
    assert "ASSUMPTION" in text and "records/visit" in text
    result_lines = text.splitlines()[2 : 2 + len(fields(Plan))]
    assert len(result_lines) == len(fields(Plan)) and "" not in result_lines, "one table row per figure of the plan"
    for line in result_lines:
        assert len(line.split("  ")) > 2, f"each result line carries its formula: {line!r}"
    assert main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["inputs"]["name"] for d in data] == [GUIZHOU.name, NATION.name]
    assert main(["--visits-per-day", "5000000", "--json"]) == 0
    custom = json.loads(capsys.readouterr().out)
    assert len(custom) == 1 and custom[0]["inputs"]["visits_per_day"] == 5_000_000


def test_runs_as_a_module_and_as_a_plain_script(tmp_path):
    mod = subprocess.run([sys.executable, "-m", "yijian.deploy.capacity"], capture_output=True, text=True, timeout=30)
    assert mod.returncode == 0, mod.stderr
    assert "Kafka brokers" in mod.stdout and "ClickHouse shards" in mod.stdout
    # pure Python: runs from anywhere with only the standard library (-I: no site-packages, no cwd)
    script = subprocess.run([sys.executable, "-I", str(REPO / "deploy" / "capacity.py")], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert script.returncode == 0, script.stderr
    assert script.stdout == mod.stdout
