"""Refuse to run in production mode with development defaults.

Kept apart from settings so that it can be tested as a plain function, and so that the
refusal is a short message on stderr rather than a traceback.
"""

import sys

DEV_SECRET_KEY = "dev-only-insecure-key-change-me"  # a known, public placeholder


def production_problems(*, debug: bool, secret_key: str, allowed_hosts: list[str]) -> list[str]:
    """Return what is unsafe about these settings in production mode (empty when DEBUG is on)."""
    if debug:
        return []
    problems = []
    if not secret_key or secret_key == DEV_SECRET_KEY:
        problems.append("DJANGO_SECRET_KEY is unset or still the development key")
    if not [h for h in allowed_hosts if h.strip()]:
        problems.append("DJANGO_ALLOWED_HOSTS is empty")
    return problems


def refuse_unsafe_production(*, debug: bool, secret_key: str, allowed_hosts: list[str]) -> None:
    """Exit with a clear message (status 2) when production settings are unsafe."""
    problems = production_problems(debug=debug, secret_key=secret_key, allowed_hosts=allowed_hosts)
    if problems:
        sys.stderr.write(
            "Refusing to start in production mode (DJANGO_DEBUG is off):\n"
            + "".join(f"  - {p}\n" for p in problems)
            + "Set DJANGO_SECRET_KEY to a long random value and DJANGO_ALLOWED_HOSTS to the "
            "host names the service answers to (comma-separated), or set DJANGO_DEBUG=1 for "
            "local development.\n"
        )
        raise SystemExit(2)
