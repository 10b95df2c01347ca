"""A local, stateful, in-memory emulator of Google's OAuth 2.0 and Calendar v3 endpoints.

Run it with ``python -m emulator --host 127.0.0.1 --port 8765``. It behaves as
``google-api-facts.md`` records Google's services behave; where that record is unsure the
behaviour is a setting of :class:`emulator.config.EmulatorConfig`. The emulator imports
nothing of the product (a test keeps it so); the product reaches it only over HTTP.

Layout: ``state`` (the data); ``oauth`` (routes, token, revoke), ``authorization`` (the
consent flow), ``consent`` (its pages), ``idtoken`` and ``scopes``; ``api`` (Calendar request
dispatch: auth, scopes, quotas) and ``fields`` (partial responses); ``events``,
``eventquery``, ``eventbody``, ``eventtime``, ``cursors``, ``recurrence``, ``calendars``,
``push`` and ``batch`` (the Calendar methods); ``quotas``, ``faults``, ``control`` and
``seeding`` (the ``/_emulator/`` test API); and ``app`` (the aiohttp application).
"""
