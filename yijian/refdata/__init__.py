"""Reference data: regions (GB/T 2260 with history), identity checks (GB 11643, GB 32100), national
code formats, and the registries, catalogues and per-institution code maps the processors use.

Light: stdlib + pydantic only, so the hospital SDK can use it too.
"""

from yijian.refdata.catalog import CODE_KINDS, TABLES, RefData, Update, load_csv
from yijian.refdata.formats import FORMATS, matches
from yijian.refdata.identity import IdCheck, check_resident_id, check_uscc, make_resident_id
from yijian.refdata.regions import RegionTable, load_regions

__all__ = ["CODE_KINDS", "TABLES", "RefData", "Update", "load_csv", "FORMATS", "matches", "IdCheck",
           "check_resident_id", "check_uscc", "make_resident_id", "RegionTable", "load_regions"]
