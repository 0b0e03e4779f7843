"""What Django's debug pages may show (they only exist with DJANGO_DEBUG=1).

Django hides settings and request variables whose names look secret (KEY, PASS, TOKEN...), but
``DATABASE_URL`` and ``CELERY_BROKER_URL`` carry their passwords inside a URL under a name
that looks harmless, and the development server copies the process environment into every
request's ``META``. This filter also hides every value holding a URL with a password, and the
names Rateloop gives its connection settings, whatever other settings are added later.
"""

import re

from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host, or scheme://:password@host (Redis)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.IGNORECASE)


class SecretHidingFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE|BROKER|DSN",
        flags=re.IGNORECASE,
    )

    def cleanse_setting(self, key, value):
        if type(value) is str and URL_WITH_PASSWORD.search(value):  # not lazy objects
            return self.cleansed_substitute
        return super().cleanse_setting(key, value)
