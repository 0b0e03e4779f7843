from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = "Exports"

    def ready(self) -> None:
        from ratings.signals import pairs_created

        pairs_created.connect(warm_on_commit, dispatch_uid="exports.warm_on_commit")


def warm_on_commit(sender, project_id: int, **kwargs) -> None:
    """New pairs: encode their text for exports once they are committed (exports/fast/warm.py)."""
    from django.db import transaction

    from exports.fast.warm import enabled
    from exports.tasks import export_cache_warm

    if enabled():
        transaction.on_commit(lambda: export_cache_warm.delay(project_id))
