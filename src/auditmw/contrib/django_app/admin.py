"""A read-only Django admin for the audit trail.

The changelist filters by outcome, status, action, kind and time (date hierarchy),
and by actor (``=actor id`` search, or a click on an actor); the detail page shows
the stored record and whether its chain segment verifies.  Nobody may add, change
or delete a record through the admin, superusers included.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import orjson
from django.contrib import admin
from django.utils.html import format_html, format_html_join

from auditmw.contrib.django_app.models import AuditRecord
from auditmw.contrib.django_app.verification import keys_from_settings, verify_record

if TYPE_CHECKING:
    from django.http import HttpRequest
    from django.utils.safestring import SafeString

    _ModelAdmin = admin.ModelAdmin[AuditRecord]
else:
    _ModelAdmin = admin.ModelAdmin  # not subscriptable at run time

__all__ = ["AuditRecordAdmin"]


@admin.register(AuditRecord)
class AuditRecordAdmin(_ModelAdmin):
    """The audit trail, read-only, with each record's verification verdict.

    .. versionadded:: 0.2.0
    """

    list_display = ("time", "kind", "action", "outcome", "status", "actor")
    list_filter = ("outcome", "status", "action", "kind")
    date_hierarchy = "time"
    search_fields = ("=actor_id", "=event_id", "=chain_id")
    list_per_page = 50
    show_full_result_count = False  # counting a large trail is slow
    fields = (
        "event_id", "time", "kind", "action", "outcome", "status", "actor_id",
        "chain_id", "seq", "stored_at", "verification", "stored_record",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Records are only added by :class:`~auditmw.contrib.django_app.sink.DjangoSink`."""
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Records are never changed."""
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Records are never deleted."""
        return False

    @admin.display(description="actor", ordering="actor_id")
    def actor(self, record: AuditRecord) -> SafeString | str:
        """The actor id, linking to the list filtered by that actor."""
        if not record.actor_id:
            return "-"
        query = urlencode({"actor_id": record.actor_id})
        return format_html('<a href="?{}">{}</a>', query, record.actor_id)

    @admin.display(description="verification")
    def verification(self, record: AuditRecord) -> SafeString:
        """Whether the record's chain segment verifies, and why not."""
        try:
            keys, mac_key = keys_from_settings()
            result = verify_record(record, keys=keys, mac_key=mac_key)
        except Exception as exc:  # a verdict must not break the page
            return format_html(
                '<span class="auditmw-verdict" data-verdict="error">could not verify: {}</span>',
                type(exc).__name__,
            )
        items = format_html_join("", "<li>{}</li>", ((f,) for f in result.findings))
        return format_html(
            '<span class="auditmw-verdict" data-verdict="{}"><strong>{}</strong> {}</span>'
            '<ul class="auditmw-findings">{}</ul>',
            result.verdict,
            result.verdict.upper().replace("_", " "),
            result.summary,
            items,
        )

    @admin.display(description="stored record")
    def stored_record(self, record: AuditRecord) -> SafeString:
        """The stored record, pretty-printed (the chain covers the stored line as is)."""
        document = record.document()
        shown = orjson.dumps(document, option=orjson.OPT_INDENT_2) if document else record.line
        text = shown.decode() if isinstance(shown, bytes) else shown
        return format_html('<pre class="auditmw-record">{}</pre>', text)
