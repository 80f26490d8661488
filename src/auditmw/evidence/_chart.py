"""The activity chart of the report: bars computed in Python, drawn as inline SVG.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["activity_bars"]

#: Bar widths tried, in minutes: the first that gives at most ``_MAX_BARS`` bars wins.
_BUCKETS_MIN: Final = (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080)
_MAX_BARS: Final = 60


def activity_bars(per_minute: dict[str, int]) -> dict[str, Any]:
    """Group per-minute counts into at most 60 bars with their SVG geometry.

    Args:
        per_minute: event counts keyed by ``YYYY-MM-DDTHH:MM``.

    .. versionadded:: 0.1.0
    """
    if not per_minute:
        return {"bars": [], "bucket": "", "max": 0}
    stamps = {}
    for key in per_minute:
        try:
            stamps[key] = datetime.fromisoformat(key + ":00+00:00")
        except ValueError:
            continue  # "2026-13-45T99:99": well-formed digits, impossible date
    if not stamps:
        return {"bars": [], "bucket": "", "max": 0}
    first, last = min(stamps.values()), max(stamps.values())
    span = int((last - first).total_seconds() // 60) + 1
    width = next((b for b in _BUCKETS_MIN if span / b <= _MAX_BARS), _BUCKETS_MIN[-1])
    start = int(first.timestamp() // 60 // width * width)
    counts: dict[int, int] = {}
    for key, count in per_minute.items():
        if key not in stamps:
            continue
        slot = (int(stamps[key].timestamp() // 60) - start) // width
        counts[slot] = counts.get(slot, 0) + count
    slots = max(counts) + 1
    top = max(counts.values())
    plot_w, plot_h, left = 860, 160, 40
    step = plot_w / max(slots, 1)
    bars = []
    for slot in range(slots):
        count = counts.get(slot, 0)
        height = round(plot_h * count / top, 1) if top else 0
        label = datetime.fromtimestamp((start + slot * width) * 60, UTC)
        bars.append(
            {
                "x": round(left + slot * step + step * 0.1, 1),
                "y": round(10 + plot_h - height, 1),
                "w": round(min(max(step * 0.8, 1), 40), 1),
                "h": height,
                "count": count,
                "label": label.strftime("%Y-%m-%d %H:%M"),
                "tick": slot in (0, slots - 1) or (slots > 4 and slot == slots // 2),
                "anchor": "start" if slot == 0 else "end" if slot == slots - 1 else "middle",
            }
        )
    bucket = f"{width} min" if width < 60 else f"{width // 60} h"
    return {"bars": bars, "bucket": bucket, "max": top}
