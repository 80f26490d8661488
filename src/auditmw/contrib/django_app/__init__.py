"""An optional Django app keeping the audit trail in the project's database.

Add ``"auditmw.contrib.django_app"`` to ``INSTALLED_APPS`` (app label
``auditmw_log``), run ``manage.py migrate``, and add
:class:`~auditmw.contrib.django_app.sink.DjangoSink` to ``AUDITMW["sinks"]``.
The app brings:

* :class:`~auditmw.contrib.django_app.models.AuditRecord`, an append-only model
  (table ``auditmw_events``) holding each stored line byte for byte, with indexed
  columns for the admin's filters; on PostgreSQL its migration installs the
  PostgreSQL sink's refuse-change triggers;
* a read-only admin: the trail filtered by actor, action, outcome, status and
  time, and each record's detail with the verdict of its chain segment;
* ``manage.py auditmw_verify``, ``auditmw verify`` for the table;
* auditmw's system checks (``manage.py check``), so the app replaces
  ``auditmw.contrib.AuditChecksConfig`` in ``INSTALLED_APPS`` (both may be listed).

.. versionadded:: 0.2.0
"""
