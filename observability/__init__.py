"""Operating gridpulse: Prometheus metrics, liveness/readiness, and the small HTTP server that
serves them for processes without a web server of their own (issue 15).

- :mod:`observability.metrics`: the shared metric conventions (``gridpulse_*`` names in base
  units, no customer in a label), the exposition, and a lint of a scrape for the tests.
- :mod:`observability.health`: :class:`Health`, the checks behind ``/livez`` and ``/readyz``.
- :mod:`observability.http`: ``/metrics``, ``/livez``, ``/readyz`` on an aiohttp server.
"""
