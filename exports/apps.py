import logging

from django.apps import AppConfig

logger = logging.getLogger(__name__)


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        from ratings.signals import pairs_created

        pairs_created.connect(warm_on_commit, dispatch_uid="exports.warm_on_commit")


def warm_on_commit(sender, project_id: int, **kwargs) -> None:
    """New pairs: encode their text for exports once they are committed (exports/accel/warm.py).
    Optional work: if the task cannot be sent (the broker is down), the queueing that
    committed still succeeds, and the project's next export encodes what it misses itself."""
    from django.db import transaction

    from exports.accel.warm import enabled
    from exports.tasks import export_cache_warm

    def send() -> None:
        try:
            export_cache_warm.delay(project_id)
        except Exception:
            logger.warning("export cache warm not sent for project %s", project_id, exc_info=True)

    if enabled():
        transaction.on_commit(send)
