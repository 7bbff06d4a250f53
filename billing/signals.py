"""The daily rollups follow every write of usage events and of a resource's lifecycle fields (``billing.rollups``)."""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from billing.models import UsageEvent, usage_days_changed, usage_events_stored
from billing.rollups import SPAN_FIELDS, add_function_usage, compute_span_changed, refresh_function_days, span_of
from resources.models import LIFECYCLE_FIELDS, Resource


def _stored(instance: Resource) -> dict | None:
    """The lifecycle fields as stored before this write (read again when the instance did not load them)."""
    if instance._state.adding or instance.pk is None:
        return None
    stored = getattr(instance, "stored_lifecycle", None)
    if stored is None:
        stored = Resource.objects.filter(pk=instance.pk).values(*LIFECYCLE_FIELDS).first()
    return stored


@receiver(pre_save, sender=Resource)
def _before_resource_save(sender, instance, raw=False, update_fields=None, **kwargs) -> None:
    if raw or (update_fields is not None and not set(update_fields) & set(SPAN_FIELDS)):
        instance.metering_before = False  # nothing billing looks at is written
        return
    instance.metering_before = _stored(instance)


@receiver(post_save, sender=Resource)
def _resource_saved(sender, instance, raw=False, **kwargs) -> None:
    before = getattr(instance, "metering_before", False)
    if before is not False:
        old = span_of(**before) if before else None
        compute_span_changed(instance.pk, old, span_of(**instance.lifecycle_values()))
    instance.remember_lifecycle()


@receiver(post_delete, sender=Resource)
def _resource_deleted(sender, instance, **kwargs) -> None:
    stored = getattr(instance, "stored_lifecycle", None) or instance.lifecycle_values()
    old = span_of(**stored)
    if old is not None:
        compute_span_changed(instance.pk, old, None)


@receiver(usage_events_stored, sender=UsageEvent)
def _usage_events_stored(sender, rows, **kwargs) -> None:
    add_function_usage(rows)


@receiver(usage_days_changed, sender=UsageEvent)
def _usage_days_changed(sender, days, **kwargs) -> None:
    refresh_function_days(days)
