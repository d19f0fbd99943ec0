"""yijian (医监): streaming platform for provincial medical supervision.

Import names live under this namespace: ``yijian.producers`` (hospital SDK), ``yijian.processors``,
``yijian.sinks``, ``yijian.rules``, ``yijian.schemas``, ``yijian.deploy``; shared core here.
"""

__version__ = "0.1.0"
