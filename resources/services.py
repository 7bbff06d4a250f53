"""Writes for resources: the API, the dashboard, the admin, the functions app and the tasks all call these.

A service validates, writes the row in its lifecycle's first status and queues
the Celery task with ``elbia.outbox.enqueue`` (ids only); the task does the
slow work. Validation problems are Django ``ValidationError``s keyed by field
(the API answers them as 400 ``invalid_request``); state conflicts are 409s.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from elbia.accounts.models import Account
from elbia.api.ids import is_public_id
from elbia.errors import Conflict
from elbia.outbox import enqueue
from resources.models import LIVE_STATUSES, Resource, ResourceStatus, ResourceType
from resources.validators import (
    DEFAULT_VPC_NAME,
    validate_function_memory_mb,
    validate_instance_type,
    validate_region,
    validate_vpc_name,
)

DEFAULT_VPC_CIDR = "172.31.0.0/16"  # what AWS gives every region's default VPC
VPC_CIDR = "10.0.0.0/16"

_UNSET: Any = object()


def _queue_provisioning(resource: Resource) -> None:
    enqueue("resources.tasks.provision_resource", resource.pk)


def _queue_deprovisioning(resource: Resource) -> None:
    enqueue("resources.tasks.deprovision_resource", resource.pk)


def _check(field: str, validate, value) -> None:
    """Run one field validator early (before anything is written), reporting under the field's name."""
    try:
        validate(value)
    except ValidationError as error:
        raise ValidationError({field: error.messages}) from None


def _clean(resource: Resource) -> None:
    """full_clean without its queries: the account and VPC were just resolved, and the database's unique
    indexes are the real guard (a public ID is drawn again on collision; VPC names are checked above)."""
    resource.full_clean(exclude=["account", "vpc"], validate_unique=False, validate_constraints=False)


def _pending(**fields) -> Resource:
    """A new, unsaved resource in its first status; provisioning counts as requested from its creation."""
    now = timezone.now()
    return Resource(**fields, status=ResourceStatus.PENDING, created_at=now, provisioning_started_at=now)


def _save_new(resource: Resource) -> Resource:
    _clean(resource)
    resource.save()
    return resource


def _live_resources(account: Account):
    """The account's resources that are not deleted."""
    return Resource.objects.for_account(account).exclude(status=ResourceStatus.DELETED)


def _vpc_name_taken(*, account: Account, region: str, name: str, exclude_pk: int | None = None) -> bool:
    vpcs = _live_resources(account).filter(type=ResourceType.VPC, region=region, name=name)
    return vpcs.exclude(pk=exclude_pk).exists()


def _vpc_conflict(region: str, name: str) -> Conflict:
    return Conflict(f"A VPC named '{name}' already exists in {region}.")


def _new_vpc(*, account: Account, region: str, name: str, cidr_block: str, tags: dict) -> Resource:
    vpc = _pending(account=account, type=ResourceType.VPC, region=region, name=name, cidr_block=cidr_block, tags=tags)
    _clean(vpc)
    try:
        vpc.save()  # in a savepoint (PublicIdModel.save): a concurrent twin surfaces as IntegrityError
    except IntegrityError:
        if _vpc_name_taken(account=account, region=region, name=name):
            raise _vpc_conflict(region, name) from None
        raise
    _queue_provisioning(vpc)
    return vpc


@transaction.atomic
def vpc_create(*, account: Account, region: str, name: str, cidr_block: str = "", tags: dict | None = None) -> Resource:
    """Create a VPC (pending) and queue its provisioning; names are unique per account and region (409)."""
    _check("region", validate_region, region)
    _check("name", validate_vpc_name, name)
    if _vpc_name_taken(account=account, region=region, name=name):
        raise _vpc_conflict(region, name)
    return _new_vpc(
        account=account,
        region=region,
        name=name,
        cidr_block=cidr_block or (DEFAULT_VPC_CIDR if name == DEFAULT_VPC_NAME else VPC_CIDR),
        tags=tags or {},
    )


def _default_vpc(*, account: Account, region: str) -> Resource | None:
    """The region's default VPC (locked as ``_locked_shared`` says), created (pending) on first use; safe
    against a concurrent first use. None when it exists but is deleting."""
    live = _live_resources(account)
    lookup = {"type": ResourceType.VPC, "region": region, "name": DEFAULT_VPC_NAME}
    vpc = _locked_shared(live.filter(**lookup))
    if vpc is not None:
        return vpc
    try:  # ours, written by this transaction: no other can delete it before we commit
        return _new_vpc(account=account, region=region, name=DEFAULT_VPC_NAME, cidr_block=DEFAULT_VPC_CIDR, tags={})
    except Conflict:  # created by a concurrent request since we looked
        return _locked_shared(live.filter(**lookup))


def _locked_shared(vpcs) -> Resource | None:
    """The first of ``vpcs``, read under a shared row lock (PostgreSQL's FOR SHARE), in one query.

    Creations in one VPC hold it side by side; its deletion (FOR UPDATE) waits for them to commit and
    then counts them, and a creation that waited for a deletion reads the VPC as it is then (deleting,
    or gone from ``vpcs``). Django has no FOR SHARE, hence the raw query built from the queryset.
    """
    if connection.vendor != "postgresql":  # SQLite: writes are serialized anyway
        return vpcs.select_for_update().order_by().first()
    sql, params = vpcs.order_by()[:1].query.sql_with_params()
    return next(iter(Resource.objects.raw(f"{sql} FOR SHARE", params)), None)


def vpc_resolve(*, account: Account, region: str, vpc: "Resource | str") -> Resource:
    """The VPC a new resource in ``region`` joins, locked against concurrent deletion.

    ``vpc`` is a VPC, its ``RES_`` ID, its name in ``region``, or ``default``
    (the region's default VPC, created on first use). Anything else is a
    ValidationError on the ``vpc`` field.
    """
    vpcs = _live_resources(account).filter(type=ResourceType.VPC)
    if isinstance(vpc, Resource):
        found = _locked_shared(vpcs.filter(pk=vpc.pk))
        label = vpc.public_id
    elif is_public_id(vpc, Resource.PUBLIC_ID_PREFIX):
        found = _locked_shared(vpcs.filter(public_id=vpc))
        label = vpc
    elif vpc == DEFAULT_VPC_NAME:
        found = _default_vpc(account=account, region=region)
        label = vpc
    else:
        found = _locked_shared(vpcs.filter(region=region, name=vpc)) if vpc.isprintable() else None
        label = vpc[:64]
    if found is None or found.status == ResourceStatus.DELETED:
        raise ValidationError({"vpc": [f"No VPC '{label}' in {region} for this account."]})
    if found.region != region:
        raise ValidationError(
            {"vpc": [f"VPC {found.public_id} is in {found.region}; a resource must be in its VPC's region ({region})."]}
        )
    if found.status in (ResourceStatus.DELETING, ResourceStatus.FAILED):
        raise ValidationError({"vpc": [f"VPC {found.public_id} is {found.status}; choose another VPC."]})
    return found


@transaction.atomic
def resource_create(
    *,
    account: Account,
    region: str,
    instance_type: str,
    vpc: "Resource | str",
    name: str = "",
    tags: dict | None = None,
) -> Resource:
    """Create a compute instance (pending) in a VPC of the same region and queue its provisioning.

    ``provisioning_started_at`` is the moment provisioning was requested (the
    row's creation); the worker then moves it to ``provisioning`` and ``active``.
    """
    _check("region", validate_region, region)
    _check("instance_type", validate_instance_type, instance_type)
    network = vpc_resolve(account=account, region=region, vpc=vpc)
    resource = _save_new(
        _pending(
            account=account,
            type=ResourceType.COMPUTE,
            region=region,
            instance_type=instance_type,
            vpc=network,
            name=name,
            tags=tags or {},
        )
    )
    _queue_provisioning(resource)
    return resource


def resource_or_vpc_create(*, account: Account, type: str = ResourceType.COMPUTE, **fields) -> Resource:
    """``POST /v1/resources``: a VPC when ``type`` is ``vpc`` (``vpc_create``), else a compute instance."""
    create = vpc_create if type == ResourceType.VPC else resource_create
    return create(account=account, **fields)


@transaction.atomic
def resource_create_for_function(*, account: Account, region: str, memory_mb: int, name: str) -> Resource:
    """Create the compute behind a function (``type=function``, pending) and queue its provisioning."""
    _check("region", validate_region, region)
    _check("memory_mb", validate_function_memory_mb, memory_mb)
    resource = _save_new(
        _pending(account=account, type=ResourceType.FUNCTION, region=region, memory_mb=memory_mb, name=name)
    )
    _queue_provisioning(resource)
    return resource


@transaction.atomic
def resource_resize_for_function(*, resource: Resource, memory_mb: int) -> Resource:
    """Record a function's new memory size on its resource (the functions app calls this on redeploy)."""
    _check("memory_mb", validate_function_memory_mb, memory_mb)
    updated = Resource.objects.filter(pk=resource.pk, type=ResourceType.FUNCTION).update(
        memory_mb=memory_mb, updated_at=timezone.now()
    )
    if not updated:
        raise ValidationError({"resource": ["Only a function's own resource can be resized."]})
    resource.memory_mb = memory_mb
    return resource


@transaction.atomic
def resource_update(*, resource: Resource, name: str = _UNSET, tags: dict | None = _UNSET) -> Resource:
    """Rename a resource or replace its tags (the only fields a customer may change after creation)."""
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if resource.status == ResourceStatus.DELETED:
        raise Conflict(f"Resource {resource.public_id} is deleted.")
    fields = ["updated_at"]
    renamed = name is not _UNSET and name != resource.name
    if renamed:
        resource.name = name
        fields.append("name")
    if tags is not _UNSET:
        resource.tags = tags or {}
        fields.append("tags")
    _clean(resource)
    if (
        renamed
        and resource.type == ResourceType.VPC
        and _vpc_name_taken(account=resource.account, region=resource.region, name=name, exclude_pk=resource.pk)
    ):
        raise _vpc_conflict(resource.region, name)
    try:
        with transaction.atomic():
            resource.save(update_fields=fields)
    except IntegrityError:
        if renamed and resource.type == ResourceType.VPC:  # a concurrent rename took the name since we looked
            raise _vpc_conflict(resource.region, resource.name) from None
        raise
    return resource


def resource_ensure_deletable(*, resource: Resource, by_function: bool = False) -> None:
    """Raise ``Conflict`` saying why ``resource`` cannot be deleted now (``resource_delete``'s rules).

    The dashboard asks before it offers to delete; ``resource_delete`` asks again under the row lock.
    """
    if resource.status in (ResourceStatus.DELETING, ResourceStatus.DELETED):
        raise Conflict(f"Resource {resource.public_id} is already {resource.status}.")
    if resource.status not in (ResourceStatus.ACTIVE, ResourceStatus.FAILED):
        raise Conflict(
            f"Resource {resource.public_id} is still {resource.status}; delete it once it is active or failed."
        )
    if resource.type == ResourceType.FUNCTION and not by_function:
        raise Conflict(f"Resource {resource.public_id} runs a function; delete the function instead.")
    if resource.type == ResourceType.VPC:
        members = resource.members.filter(status__in=LIVE_STATUSES).count()
        if members:
            raise Conflict(f"VPC {resource.public_id} is still used by {members} live resource(s).")


@transaction.atomic
def resource_delete(*, resource: Resource, by_function: bool = False) -> Resource:
    """Start tearing a resource down (``deleting``) and queue the work; 409 when it cannot be deleted now.

    Only ``active`` and ``failed`` resources can be deleted; a VPC only once no
    live resource uses it; a function's resource only through its function
    (``by_function=True``, what the functions app passes).
    """
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    resource_ensure_deletable(resource=resource, by_function=by_function)
    resource.status = ResourceStatus.DELETING
    resource.deleting_started_at = timezone.now()
    resource.failure_reason = ""
    resource.lifecycle_task_id = ""
    resource.requeue_count = 0
    resource.save(
        update_fields=[
            "status",
            "deleting_started_at",
            "failure_reason",
            "lifecycle_task_id",
            "requeue_count",
            "updated_at",
        ]
    )
    _queue_deprovisioning(resource)
    return resource


def resource_record_provider_id(*, resource: Resource, provider_id: str) -> None:
    """Record the provider's id of a function's resource: its function's, once the function is deployed."""
    Resource.objects.filter(pk=resource.pk, type=ResourceType.FUNCTION).exclude(provider_id=provider_id).update(
        provider_id=provider_id
    )
    resource.provider_id = provider_id


@transaction.atomic
def resource_fail_drifted(*, resource_ids: Iterable[int], reason: str) -> int:
    """Fail the active resources among ``resource_ids`` with ``reason``: their infrastructure changed or went
    away outside Elbia (the drift check). One UPDATE; rows no longer active are left alone."""
    now = timezone.now()
    return Resource.objects.filter(pk__in=list(resource_ids), status=ResourceStatus.ACTIVE).update(
        status=ResourceStatus.FAILED,
        failure_reason=reason,
        failed_at=now,
        drifted_at=now,
        lifecycle_task_id="",
        requeue_count=0,
        updated_at=now,
    )


@transaction.atomic
def resource_retry_provisioning(*, resource: Resource) -> Resource:
    """Send a failed resource back to ``pending`` and queue its provisioning again (staff action)."""
    resource = Resource.objects.select_for_update().get(pk=resource.pk)
    if resource.status != ResourceStatus.FAILED:
        raise Conflict(f"Only failed resources can be retried; {resource.public_id} is {resource.status}.")
    if resource.vpc_id is not None:
        vpc_resolve(account=resource.account, region=resource.region, vpc=resource.vpc)
    resource.status = ResourceStatus.PENDING
    resource.failure_reason = ""
    resource.failed_at = None
    resource.drifted_at = None
    resource.provisioning_started_at = timezone.now()
    resource.lifecycle_task_id = ""
    resource.requeue_count = 0
    # What the failed attempt created is not reused (a failed instance stays failed): the provider finds
    # anything of this resource still alive by its tag, or creates it anew.
    resource.provider_id = ""
    resource.save(
        update_fields=[
            "status",
            "failure_reason",
            "failed_at",
            "drifted_at",
            "provisioning_started_at",
            "lifecycle_task_id",
            "requeue_count",
            "provider_id",
            "updated_at",
        ]
    )
    _queue_provisioning(resource)
    return resource


def resource_record_execution(*, resource_id: int, executed_at: datetime) -> None:
    """Move a function resource's ``last_execution`` forward (never back); for usage ingestion."""
    Resource.objects.filter(pk=resource_id).filter(
        Q(last_execution__isnull=True) | Q(last_execution__lt=executed_at)
    ).update(last_execution=executed_at)
