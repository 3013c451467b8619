"""A self-contained HTML report (inline SVG charts, no scripts, nothing fetched) for managers."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from projections import reports
from projections.view import ReportView

W, H, PAD = 640, 240, 36


def bar_chart(chart_id: str, title: str, labels: list[str], values: list[float], unit: str = "",
              target: float | None = None, top: float | None = None) -> str:
    top = top or max([*values, target or 0, 1])
    n = max(len(values), 1)
    step = (W - 2 * PAD) / n
    bars = []
    for i, (label, value) in enumerate(zip(labels, values)):
        h = (H - 2 * PAD) * value / top
        x = PAD + i * step + step * 0.15
        bars.append(f'<rect class="bar" x="{x:.1f}" y="{H - PAD - h:.1f}" width="{step * 0.7:.1f}" '
                    f'height="{h:.1f}"><title>{escape(str(label))}: {value:g}{unit}</title></rect>'
                    f'<text x="{x + step * 0.35:.1f}" y="{H - PAD + 14}" text-anchor="middle">'
                    f'{escape(str(label))}</text>')
    line = ""
    if target is not None:
        y = H - PAD - (H - 2 * PAD) * target / top
        line = (f'<line class="target" x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<text x="{W - PAD}" y="{y - 4:.1f}" text-anchor="end">target {target:g}{unit}</text>')
    empty = "" if values else f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle">no data yet</text>'
    return (f'<figure><figcaption>{escape(title)}</figcaption><svg id="{chart_id}" viewBox="0 0 {W} {H}" '
            f'width="{W}" height="{H}" role="img" aria-label="{escape(title)}">'
            f'<line x1="{PAD}" x2="{W - PAD}" y1="{H - PAD}" y2="{H - PAD}" stroke="#888"/>'
            f'{"".join(bars)}{line}{empty}</svg></figure>')


def table(title: str, rows: list[dict]) -> str:
    if not rows:
        return f"<h3>{escape(title)}</h3><p>none</p>"
    head = "".join(f"<th>{escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape('' if v is None else str(v))}</td>" for v in r.values())
                   + "</tr>" for r in rows)
    return f"<h3>{escape(title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(view: ReportView, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    sla = reports.sla_compliance(view, "period")
    backlog = reports.backlog(view, now)
    ages = [k for k in (backlog[0] if backlog else {"<1d": 0, "1-3d": 0, "3-7d": 0, "7-30d": 0, ">30d": 0})
            if k not in ("stage", "total")]
    satisfaction = reports.satisfaction(view, "period")
    charts = [
        bar_chart("chart-sla", "SLA compliance by month (% of cases with no breach)",
                  [r["period"] for r in sla], [r["compliance_pct"] for r in sla], "%", top=100),
        bar_chart("chart-backlog", "Open cases by age", ages, [sum(r[a] for r in backlog) for a in ages]),
        bar_chart("chart-satisfaction", f"Satisfaction by month against the target of {reports.SATISFACTION_TARGET}",
                  [r["period"] for r in satisfaction], [r["average"] for r in satisfaction],
                  target=reports.SATISFACTION_TARGET, top=100),
    ]
    tables = [table("SLA compliance by priority", reports.sla_compliance(view, "priority")),
              table("Response and resolution times by priority (hours)", reports.response_times(view)),
              table("First contact resolution and reopen rate by month", reports.outcomes(view)),
              table("Backlog by stage and age", backlog),
              table("Escalations by level and cause", reports.escalations(view)),
              table("Cases by month, category and department", reports.complaints(view)[-60:])]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>casework report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} figcaption {{ font-weight: bold; }}
.bar {{ fill: #3b7dd8; }} .target {{ stroke: #d83b3b; stroke-dasharray: 6 3; }}
svg text {{ font-size: 10px; }} table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; font-size: 12px; }}
</style></head><body>
<h1>casework report</h1><p>Generated {now:%Y-%m-%d %H:%M} UTC from the reporting tables.</p>
{"".join(charts)}
{"".join(tables)}
</body></html>
"""
