"""A report as CSV (machine-readable column names) or as a printable HTML page (translated)."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

from fastapi import Response

from services.referral.cost_schemas import CostReport
from services.referral.schemas import ReferralReport, ReportRow
from shared.i18n import N_, Message, gettext

FIGURES = (
    ("sent", N_("Referrals sent")),
    ("acknowledged_on_time", N_("Acknowledged on time")),
    ("accepted_on_time", N_("Accepted on time")),
    ("median_hours_to_acknowledge", N_("Median hours to acknowledge")),
    ("p90_hours_to_acknowledge", N_("90th percentile hours to acknowledge")),
    ("median_hours_to_accept", N_("Median hours to accept")),
    ("p90_hours_to_accept", N_("90th percentile hours to accept")),
    ("feedback_responses", N_("Feedback responses")),
    ("mean_feedback_score", N_("Mean feedback score (1-5)")),
)
DIMENSION_NAMES = {
    "programme": N_("Programme"),
    "donor": N_("Donor"),
    "host_country": N_("Host country"),
    "origin_country": N_("Country of origin"),
    "area": N_("Area"),
    "partner": N_("Partner"),
    "category": N_("Service category"),
    "outcome": N_("Outcome"),
}
PERIOD_NAMES = {"month": N_("Month"), "quarter": N_("Quarter"), "year": N_("Year")}


def _extra_columns(report: ReferralReport) -> tuple[list[str], list[str]]:
    rows = [*report.rows, report.total]
    outcomes = sorted({key for row in rows for key in row.outcomes})
    withheld = sorted({key for row in rows for key in row.withheld})
    return outcomes, withheld


def _cells(report: ReferralReport, row: ReportRow) -> list[Any]:
    outcomes, withheld = _extra_columns(report)
    values: list[Any] = [row.period]
    values += [row.group.get(str(d)) for d in report.group_by]
    values += [getattr(row, name) for name, _ in FIGURES]
    values += [row.outcomes.get(o, "") for o in outcomes]
    values += [row.withheld.get(w, "") for w in withheld]
    return ["" if v is None else v for v in values]


def as_csv(report: ReferralReport) -> str:
    """The report as CSV: one line per row, then the total; column names as in the JSON."""
    outcomes, withheld = _extra_columns(report)
    header = ["period", *(str(d) for d in report.group_by), *(name for name, _ in FIGURES)]
    header += [f"outcome:{o}" for o in outcomes] + [f"withheld:{w}" for w in withheld]
    return csv_text(header, [_cells(report, row) for row in [*report.rows, report.total]])


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    """A header line and the rows as CSV (CRLF line ends, as RFC 4180 has them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def csv_download(text: str, name: str) -> Response:
    """CSV text as a download named `name`."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


COST_COLUMNS = ("programme", "donor", "payer_org_id", "currency", "status", "shares", "amount")


def cost_csv(report: CostReport) -> str:
    """The cost report as CSV: its rows, then each currency's total (empty payer and status)."""
    rows = [
        ["" if (v := getattr(row, name)) is None else str(v) for name in COST_COLUMNS]
        for row in [*report.rows, *report.totals]
    ]
    return csv_text(list(COST_COLUMNS), rows)


def cost_response(report: CostReport, output: str) -> Response:
    """The cost report as JSON or as a CSV download."""
    if output == "csv":
        name = f"referral-costs-{report.from_date}-{report.to_date}.csv"
        return csv_download(cost_csv(report), name)
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #111; }
h1 { font-size: 1.4rem; } p.note { font-size: .85rem; color: #444; max-width: 60rem; }
table { border-collapse: collapse; font-size: .8rem; }
th, td { border: 1px solid #999; padding: .25rem .4rem; text-align: right; }
th { background: #eee; } td.key { text-align: left; } tr.total td { font-weight: bold; }
@media print {
  body { margin: 0; } @page { size: A4 landscape; margin: 12mm; }
  thead { display: table-header-group; } tr { page-break-inside: avoid; }
}
"""


def as_html(report: ReferralReport, lang: str) -> str:
    """A self-contained printable page of the report in `lang`."""
    outcomes, withheld = _extra_columns(report)
    headings = [gettext(PERIOD_NAMES[str(report.period)], lang)]
    headings += [gettext(DIMENSION_NAMES[str(d)], lang) for d in report.group_by]
    headings += [gettext(label, lang) for _, label in FIGURES]
    headings += [Message("Outcome: {outcome}", outcome=o).render(lang) for o in outcomes]
    headings += [Message("Withheld: {pair}", pair=w).render(lang) for w in withheld]
    keys = 1 + len(report.group_by)
    body = [_html_row(report, row, keys, "", lang) for row in report.rows]
    body.append(_html_row(report, report.total, keys, "total", lang))
    title = Message(
        "Referral report, {start} to {end}",
        start=report.from_date.isoformat(),
        end=report.to_date.isoformat(),
    ).render(lang)
    note = Message(
        'Counts under {threshold} show as "<5", as do figures resting on fewer values and '
        "the further cells the total would otherwise give them back from. No personal data.",
        threshold=report.threshold,
    ).render(lang)
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>{_filters(report, lang)}"
        f'<p class="note">{escape(note)}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>"
    )


def _filters(report: ReferralReport, lang: str) -> str:
    parts = []
    if report.programme:
        parts.append(f"{gettext(DIMENSION_NAMES['programme'], lang)}: {report.programme}")
    if report.host_country:
        parts.append(f"{gettext(DIMENSION_NAMES['host_country'], lang)}: {report.host_country}")
    return f"<p>{escape(' · '.join(parts))}</p>" if parts else ""


def _html_row(report: ReferralReport, row: ReportRow, keys: int, css: str, lang: str) -> str:
    cells = _cells(report, row)
    if row.period == "total":
        cells[0] = gettext(N_("Total"), lang)
    tds = [
        f"<td{' class=key' if i < keys else ''}>{escape(str(v))}</td>" for i, v in enumerate(cells)
    ]
    return f'<tr class="{css}">{"".join(tds)}</tr>'


def response(report: ReferralReport, output: str, lang: str) -> Response:
    """The report in the asked format: JSON, a CSV download or a printable HTML page."""
    if output == "csv":
        name = f"referrals-{report.period}-{report.from_date}-{report.to_date}.csv"
        return csv_download(as_csv(report), name)
    if output == "html":
        return Response(as_html(report, lang), media_type="text/html; charset=utf-8")
    return Response(report.model_dump_json(by_alias=True), media_type="application/json")
