"""Reports for the province: the quarterly report on online public services, as JSON or CSV."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from gateway.domain.quarterly_report import Quarter, csv_rows
from gateway.services.dossiers.quarterly_report import quarterly as quarterly_report

from .auth import require
from .errors import ApiError
from .openapi import documented

bp = Blueprint("reports", __name__, url_prefix="/ops/reports")


@bp.get("/quarterly")
@require("ops")
@documented(query={"year": {"type": "integer", "minimum": 2000, "maximum": 2100, "required": True},
                   "quarter": {"type": "integer", "minimum": 1, "maximum": 4, "required": True},
                   "format": {"type": "string", "enum": ["json", "csv"]}})
def quarterly() -> ResponseReturnValue:
    """Dossiers by procedure, level, channel and final status; on-time rate; paid online; delivered by post.

    Per procedure, level and channel: dossiers received, by status, finished, on time / late and the
    on-time rate, with fees and paid online (share), with a result and delivered by post (share), plus
    totals. JSON, or CSV with `format=csv` or `Accept: text/csv` (UTF-8 with a byte-order mark for Excel,
    the totals as the last row `TOTAL`). 400 for a bad year or quarter. The counting rules:
    `docs/console.md#quarterly-report`.
    """
    try:
        quarter = Quarter(int(request.args.get("year", "")), int(request.args.get("quarter", "")))
    except ValueError:
        raise ApiError(400, "bad_query", "give year (2000-2100) and quarter (1-4)") from None
    wanted = request.args.get("format") or ("csv" if request.accept_mimetypes.best == "text/csv" else "json")
    if wanted not in ("json", "csv"):
        raise ApiError(400, "bad_query", "format is json or csv")
    report = quarterly_report(current_app.config["GATEWAY"].context, quarter)
    if wanted == "json":
        return jsonify(report)
    out = io.StringIO()
    csv.writer(out).writerows(csv_rows(report))
    name = f"bao-cao-quy-{quarter.quarter}-{quarter.year}.csv"
    # UTF-8 with a byte-order mark: Excel, what provincial offices open it with, then shows Vietnamese right.
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
