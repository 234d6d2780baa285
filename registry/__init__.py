"""The DER registry: device identities, utility programs, enrolment and telemetry.

Storage functions here take a SQLAlchemy ``Session`` and plain values, and return
plain values or frozen dataclasses. They never import a web framework: the API and
the CLI (``api/``) are the composition roots that open sessions and call them.
"""
