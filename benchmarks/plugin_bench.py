"""Plugin benchmarks.

- ``check_plugin_fields``: a sales user's first visible page of 50 leads with an
  access check loaded that reads a field of each record (``view.stage`` and a custom
  field), as the closed-stage example does. The views of the page are loaded in one
  query before the checks run. Baseline: the same page with no plugin loaded (the
  figure is the page with the plugin; the target is the page's, 20 ms).
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.core_bench import _CASES, NOW_DB, PAGE, PAGE_TARGET_MS, ms, page_cases, paired_runs, product
from benchmarks.harness import Bench, Figure, benchmark


class FieldReader:
    """An access check that reads the record it is asked about."""

    def __init__(self) -> None:
        self.read = 0

    def sharetui_check_access(self, user: Any, action: str, view: Any) -> Any:
        from sharetui.sdk import deny

        self.read += 1
        if view is not None and action == "edit" and view.stage == "Closed":
            return deny("closed") if view.fields.get("score", 0) > 1 else None
        return None


def _host_with(plugin: Any) -> Any:
    from sharetui import hookimpl
    from sharetui.host import PluginHost

    hookimpl(plugin.sharetui_check_access.__func__)
    host = PluginHost.load(entry_points=False)
    if not host.register(plugin, name="field-reader"):
        raise RuntimeError(f"the benchmark plugin was rejected: {host.plugins['field-reader'].errors}")
    return host


@benchmark("check_plugin_fields")
def check_plugin_fields(bench: Bench) -> list[Figure]:
    from sharetui.domain.roles import EntityType

    con = bench.raw()
    try:
        key = f"sqlite:{bench.db_path}"
        if key not in _CASES:
            _CASES[key] = page_cases(
                lambda sql, params: con.execute(sql, params).fetchall(), users=5, true="1", p="?", now=NOW_DB
            )
        cases = _CASES[key]
    finally:
        con.close()
    plugin = FieldReader()
    with product(bench.db_url) as plain, product(bench.db_url, plugins=_host_with(plugin)) as core:

        def page(c: Any) -> Any:
            return lambda: [
                [r.id for r in c.access.visible(case.user_id, EntityType.LEAD, limit=PAGE).rows]
                for case in cases
            ]

        with_plugin, without = page(core), page(plain)
        if with_plugin() != without():
            raise RuntimeError("check_plugin_fields: the plugin changed which leads are visible")
        if not plugin.read:
            raise RuntimeError("check_plugin_fields: the plugin was never asked")
        times, base_times = paired_runs(with_plugin, without, repeats=bench.repeats)
    value = ms(statistics.median(times)) / len(cases)
    base = ms(statistics.median(base_times)) / len(cases)
    notes = f"mean over {len(cases)} sales users; baseline: the same page with no plugin"
    return [
        Figure(
            "check_plugin_fields",
            value,
            "ms",
            f"<= {PAGE_TARGET_MS:g} ms",
            value <= PAGE_TARGET_MS,
            base,
            notes,
        )
    ]
