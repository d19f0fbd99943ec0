"""The dashboard in a real headless Chromium: the county map, connection pie, findings trend, worst
institutions and the drill-down render with data.

Chromium and chromedriver come from Debian packages (deploy/install-browser.sh installs them when
/usr/bin/chromium is absent); ECharts and the Guizhou map come from pinned npm packages
(yijian.sinks.assets), fetched once and then served by the dashboard itself (no CDN)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from sink_helpers import drain
from yijian.config import Settings
from yijian.sinks import synth

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def browser():
    if not Path("/usr/bin/chromium").exists() or not Path("/usr/bin/chromedriver").exists():
        subprocess.run(["bash", str(REPO / "deploy" / "install-browser.sh")], check=True, timeout=900)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1100"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def dashboard(broker, clickhouse_path, tmp_path_factory):
    from yijian.kafka import delete_topics_with_prefix, ensure_topics
    from yijian.sinks.assets import ensure_assets
    from yijian.sinks.queries import ClientBackend
    from yijian.sinks.server import App, Server
    from yijian.sinks.sink import ClickHouseSink

    assets = ensure_assets()
    tag = uuid.uuid4().hex[:10]
    s = Settings(home=tmp_path_factory.mktemp("dhome"), kafka_bootstrap=broker, topic_prefix=f"t{tag}.", topic_partitions=2,
                 clickhouse_dsn=f"chdb://{clickhouse_path}", clickhouse_database=f"t_{tag}", sink_batch_seconds=0.3)
    ensure_topics(s)
    prov = synth.generate(n_institutions=88, encounters_per_inst=4, seed=33)
    n = synth.publish(s, prov)
    sink = ClickHouseSink(s)
    drain(sink, n)
    server = Server(App(backend=ClientBackend(sink.client), dashboard=True, settings=s, assets=assets)).start()
    yield server.url, prov
    server.stop()
    sink.close()
    delete_topics_with_prefix(s, s.topic_prefix)
    sink.client.command(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")


def test_dashboard_renders_map_and_charts_with_data(browser, dashboard, tmp_path):
    from selenium.webdriver.support.ui import WebDriverWait

    url, prov = dashboard
    browser.get(url + "/")
    WebDriverWait(browser, 60).until(lambda d: d.execute_script("return window.yijianReady === true || !!window.yijianError"))
    assert browser.execute_script("return window.yijianError || null") is None
    # chart options carry the data
    map_data = browser.execute_script("return window.yijianCharts.map.getOption().series[0].data")
    assert len(map_data) == 88 and all(isinstance(x["value"], (int, float)) for x in map_data)
    geo_names = browser.execute_script("return echarts.getMap('guizhou').geoJSON.features.map(f => f.properties.name)")
    assert {x["name"] for x in map_data} == set(geo_names), "every county of the data is a region of the map"
    pie = browser.execute_script("return window.yijianCharts.conn.getOption().series[0].data")
    assert sum(x["value"] for x in pie) == 88
    trend = browser.execute_script("return window.yijianCharts.trend.getOption().series.map(s => s.data.reduce((a, b) => a + b, 0))")
    assert sum(trend) == prov.expected["findings"]
    worst = browser.execute_script("return window.yijianCharts.worst.getOption().series[0].data")
    assert len(worst) == 10
    detail = browser.execute_script("return window.yijianCharts.detail.getOption().series.map(s => s.data.reduce((a, b) => a + b, 0))")
    assert detail[0] > 0  # encounters of the drilled-down institution
    assert browser.find_element("id", "k-inst").text == "88"
    # pixels: the map canvas shows several distinct fill colours (not blank, not one colour)
    colours = browser.execute_script("""
        const c = window.yijianCharts.map.getDom().querySelector('canvas');
        const ctx = c.getContext('2d'); const d = ctx.getImageData(0, 0, c.width, c.height).data;
        const seen = new Set(); let painted = 0;
        for (let i = 0; i < d.length; i += 4 * 7) {
          if (d[i + 3] === 0) continue;
          const k = (d[i] >> 4) + ',' + (d[i + 1] >> 4) + ',' + (d[i + 2] >> 4);
          seen.add(k); if (!(d[i] > 240 && d[i + 1] > 240 && d[i + 2] > 240)) painted++;
        }
        return [seen.size, painted, d.length / 4 / 7];""")
    distinct, painted, sampled = colours
    assert distinct >= 6, colours
    assert painted > 0.1 * sampled, colours
    shot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    import os, shutil
    if os.environ.get("YIJIAN_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["YIJIAN_KEEP_SCREENSHOT"])
    # the drill-down follows a click on another institution
    other = worst[0]
    code = browser.execute_script("return window.yijianCharts.worst.getOption().yAxis[0].data[0]")
    browser.execute_script(f"return drill('{code}')")
    WebDriverWait(browser, 20).until(lambda d: code in d.find_element("id", "detail-title").text)
    assert other is not None
