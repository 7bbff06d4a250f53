"""The AWS provider (``ELBIA_PROVIDER=aws``): VPCs and instances in EC2, functions in AWS Lambda, through boto3.

What each row becomes at AWS (its ``provider_id`` is the id AWS gave it, used for every later call):

- a VPC resource: a VPC of its CIDR block with one subnet spanning it (an account's ``default`` VPC of a
  region is such a VPC too); deleting it deletes the subnet, then the VPC (Elbia deletes a VPC only once
  its resources are gone, and an instance's deletion waits for ``terminated``);
- a compute resource: one instance of its type, from the region's machine image (``ELBIA_AWS_AMI``), in
  its VPC's subnet, launched with a ``ClientToken`` (its public id and provisioning request time) and
  tagged ``elbia:resource-id`` and ``elbia:account``. It is active once the instance is ``running``, and
  failed with AWS's reason when the instance ends otherwise; deleting terminates it and waits for
  ``terminated``;
- a function's resource: nothing of its own (the Lambda function is its function's); deleting it deletes
  the Lambda function;
- a function: a Lambda function named after its public id, created from its stored code with its runtime,
  handler, memory, timeout, environment (decrypted only here) and the execution role
  ``ELBIA_AWS_LAMBDA_ROLE_ARN``. A later deployment updates the code, then the configuration, where they
  differ from the function's, and is done once Lambda reports them applied: an active function's memory
  is the memory Lambda runs it with.

Every method is safe to call again: what exists is found first (by provider id, or by its tag when a
worker died before the id was saved), and work AWS has started is awaited by raising ``NotReady`` (the
task looks again later: no worker sleeps).

Errors: throttling, AWS's 5xx answers, timeouts and connection failures are ``TransientProviderError``
(retried with backoff; botocore retries each call a few times first); any other refusal is a
``ProviderError`` carrying AWS's message and error code (the customer's failure reason).

Configuration comes from the environment only (docs/providers.md): the standard AWS variables for
credentials, ``ELBIA_AWS_ENDPOINT_URL``, ``ELBIA_AWS_AMI`` and ``ELBIA_AWS_LAMBDA_ROLE_ARN``; what is
missing stops the process at start (the provider is built when Django starts). Clients are created once
per process, region and service.
"""

import base64
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as AwsConnectionError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from elbia.providers.base import InvokeResult, NotReady, Provider, ProviderError, TransientProviderError

logger = logging.getLogger(__name__)

RESOURCE_TAG = "elbia:resource-id"
ACCOUNT_TAG = "elbia:account"
FUNCTION_TAG = "elbia:function-id"

#: Short timeouts (a worker slot is never held long by a silent endpoint) and botocore's standard retries
#: (throttling and 5xx retried with jittered backoff inside one call, before the task's own backoff).
CLIENT_CONFIG = Config(
    connect_timeout=5,
    read_timeout=30,
    retries={"mode": "standard", "max_attempts": 3},
    user_agent_extra="elbia",
)

#: Invoke waits as long as a function may run (Lambda's 900 s and a margin) and is never retried by botocore:
#: a retry after a lost answer would run the function twice.
INVOKE_CONFIG = Config(
    connect_timeout=5,
    read_timeout=960,
    retries={"mode": "standard", "max_attempts": 1},
    user_agent_extra="elbia",
)
#: The duration in the REPORT line of an invocation's log tail: ``REPORT RequestId: ... Duration: 1.23 ms``.
REPORT_DURATION = re.compile(r"REPORT RequestId:.*?\tDuration: ([0-9.]+) ms")
REPORT_INIT_DURATION = re.compile(r"REPORT RequestId:.*?\tInit Duration: ([0-9.]+) ms")

#: Error codes that mean "not now" rather than "no": the task retries them with backoff.
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "Unavailable",
        "InternalError",
        "InternalFailure",
        "ServiceException",
        "InsufficientInstanceCapacity",
        # Something AWS is still releasing (a terminated instance's network interface) holds on to a
        # subnet or VPC being deleted.
        "DependencyViolation",
    }
)

#: Instance states listed by the drift check (terminated instances count as gone), and the ones that are
#: as Elbia left an active resource.
LISTED_INSTANCE_STATES = ("pending", "running", "shutting-down", "stopping", "stopped")
HEALTHY_INSTANCE_STATES = ("pending", "running")
PAGE_SIZE = 1000  # EC2's largest page


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def _translate(error: ClientError) -> Exception:
    """AWS's refusal as a ProviderError (its message is the failure reason), or a TransientProviderError."""
    code = _error_code(error)
    message = error.response.get("Error", {}).get("Message") or str(error)
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    if code in TRANSIENT_CODES or status >= 500 or status == 429:
        return TransientProviderError(f"AWS could not do it now: {message} ({code or status})")
    return ProviderError(f"{message} ({code})" if code else message)


@contextmanager
def _aws_errors() -> Iterator[None]:
    """Translate what boto3 raises into the provider errors the lifecycle understands."""
    try:
        yield
    except ClientError as error:
        raise _translate(error) from error
    except (AwsConnectionError, HTTPClientError) as error:
        raise TransientProviderError(f"AWS did not answer: {error}") from error
    except BotoCoreError as error:  # e.g. credentials that expired and cannot be refreshed
        raise ProviderError(f"The AWS client failed: {error}") from error


def _call(operation: Callable[..., dict], /, *, absent: tuple[str, ...] = (), busy: tuple[str, ...] = (), **params):
    """One AWS call. ``None`` when AWS answers an ``absent`` code (it is not there); ``NotReady`` for ``busy``."""
    with _aws_errors():
        try:
            return operation(**params)
        except ClientError as error:
            if _error_code(error) in absent:
                return None
            if _error_code(error) in busy:
                raise NotReady() from None
            raise


def _lambda_time(text: str) -> datetime | None:
    """Lambda's ``LastModified`` (``2025-01-01T00:00:00.000+0000``) as an aware datetime."""
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _filters(filters: dict[str, Iterable[str]]) -> list[dict]:
    """EC2's ``Filters`` parameter from ``{"name": values}``."""
    return [{"Name": name, "Values": list(values)} for name, values in filters.items()]


def check_configuration(session: boto3.session.Session) -> None:
    """Stop the process when the AWS provider lacks what it needs, naming every missing piece at once."""
    missing = []
    if session.get_credentials() is None:
        missing.append(
            "AWS credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or an instance role)"
        )
    if not settings.ELBIA_AWS_AMI:
        missing.append(
            "the machine image of each region in ELBIA_AWS_AMI (e.g. us-east-1=ami-0abc...,eu-west-1=ami-0def..., "
            "or one AMI id for every region)"
        )
    if not settings.ELBIA_AWS_LAMBDA_ROLE_ARN:
        missing.append("the Lambda execution role in ELBIA_AWS_LAMBDA_ROLE_ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    if missing:
        raise ImproperlyConfigured(
            "ELBIA_PROVIDER=aws needs " + "; ".join(missing) + ". See docs/providers.md.",
        )


class AwsProvider(Provider):
    """Provisions resources in EC2 and deploys functions to AWS Lambda (see the module docstring)."""

    def __init__(self) -> None:
        self._session = boto3.session.Session()
        check_configuration(self._session)
        self._clients: dict[tuple, Any] = {}
        self._subnets: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    # --- clients -----------------------------------------------------------------------------------

    def _client(self, service: str, region: str, config: Config = CLIENT_CONFIG):
        """The process's client for ``service`` in ``region`` (botocore clients are thread-safe; a session is
        not, hence the lock; a forked worker builds its own)."""
        key = (os.getpid(), service, region, settings.ELBIA_AWS_ENDPOINT_URL, id(config))
        client = self._clients.get(key)
        if client is None:
            with self._lock:
                client = self._clients.get(key)
                if client is None:
                    client = self._session.client(
                        service,
                        region_name=region,
                        endpoint_url=settings.ELBIA_AWS_ENDPOINT_URL,
                        config=config,
                    )
                    self._clients[key] = client
        return client

    # --- the provider interface ----------------------------------------------------------------------

    def provision(self, resource) -> None:
        if resource.type == "vpc":
            self._provision_vpc(resource)
        elif resource.type == "compute":
            self._provision_instance(resource)
        # A function's resource has nothing of its own at AWS: deploy_function creates the Lambda function.

    def deprovision(self, resource) -> None:
        if resource.type == "vpc":
            self._delete_vpc(resource)
        elif resource.type == "compute":
            self._terminate_instance(resource)
        elif resource.type == "function":
            self._delete_lambda(resource)

    def deploy_function(self, function) -> None:
        lambda_ = self._client("lambda", function.region)
        wanted = self._lambda_configuration(function)
        current = _call(
            lambda_.get_function_configuration,
            absent=("ResourceNotFoundException",),
            FunctionName=function.provider_id or function.public_id,
        )
        if current is None:
            current = _call(
                lambda_.create_function,
                busy=("ResourceConflictException",),  # created meanwhile: the next look finds it
                FunctionName=function.public_id,
                Code={"ZipFile": function.code_archive()},
                Tags={FUNCTION_TAG: function.public_id, ACCOUNT_TAG: str(function.account_id)},
                **wanted,
            )
        function.provider_id = current["FunctionArn"]
        self._lambda_settled(lambda_, current, function)
        arn = current["FunctionArn"]
        if current.get("CodeSha256") != self._lambda_code_sha256(function):
            _call(
                lambda_.update_function_code,
                busy=("ResourceConflictException",),
                FunctionName=arn,
                ZipFile=function.code_archive(),
            )
            raise NotReady()
        if any(self._lambda_value(current, key) != value for key, value in wanted.items()):
            _call(
                lambda_.update_function_configuration, busy=("ResourceConflictException",), FunctionName=arn, **wanted
            )
            raise NotReady()

    runs_functions = True

    def invoke(self, function, event: bytes, request_id: str) -> InvokeResult:
        """Lambda's ``Invoke`` (``RequestResponse``, ``LogType=Tail``) of the function's Lambda function.

        The duration (and a cold start's init duration) is the ``REPORT`` line's when the log tail has it, else
        the call's own (a ceiling).
        ``request_id`` is Elbia's: Lambda gives the run its own request id (``context.aws_request_id``).
        """
        lambda_ = self._client("lambda", function.region, INVOKE_CONFIG)
        started = time.monotonic()
        answer = _call(
            lambda_.invoke,
            FunctionName=function.provider_id or function.public_id,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=event,
        )
        elapsed_ms = (time.monotonic() - started) * 1000
        log_tail = base64.b64decode(answer.get("LogResult") or "").decode(errors="replace")
        reported = REPORT_DURATION.search(log_tail)
        init = REPORT_INIT_DURATION.search(log_tail)
        return InvokeResult(
            payload=answer["Payload"].read(),
            function_error=answer.get("FunctionError"),
            log_tail=log_tail,
            duration_ms=float(reported.group(1)) if reported else elapsed_ms,
            init_duration_ms=float(init.group(1)) if init else None,
        )

    def inventory(self, *, kind: str, region: str) -> Mapping[str, str] | None:
        if kind == "compute":
            return self._instance_inventory(region)
        if kind == "vpc":
            return self._vpc_inventory(region)
        if kind == "function":
            return self._lambda_inventory(region)
        return None

    # --- VPCs ----------------------------------------------------------------------------------------

    @staticmethod
    def _tags(resource) -> list[dict]:
        return [
            {"Key": RESOURCE_TAG, "Value": resource.public_id},
            {"Key": ACCOUNT_TAG, "Value": str(resource.account_id)},
            {"Key": "Name", "Value": f"{resource.name or resource.type} ({resource.public_id})"},
        ]

    def _find_vpc(self, ec2, resource) -> dict | None:
        if resource.provider_id:
            answer = _call(ec2.describe_vpcs, absent=("InvalidVpcID.NotFound",), VpcIds=[resource.provider_id])
        else:
            answer = _call(ec2.describe_vpcs, Filters=_filters({f"tag:{RESOURCE_TAG}": [resource.public_id]}))
        vpcs = (answer or {}).get("Vpcs", [])
        return vpcs[0] if vpcs else None

    def _find_subnet(self, ec2, vpc_id: str) -> dict | None:
        subnets = _call(ec2.describe_subnets, Filters=_filters({"vpc-id": [vpc_id]}))["Subnets"]
        return subnets[0] if subnets else None

    def _provision_vpc(self, resource) -> None:
        ec2 = self._client("ec2", resource.region)
        vpc = self._find_vpc(ec2, resource)
        if vpc is None:
            vpc = _call(
                ec2.create_vpc,
                CidrBlock=resource.cidr_block,
                TagSpecifications=[{"ResourceType": "vpc", "Tags": self._tags(resource)}],
            )["Vpc"]
        resource.provider_id = vpc["VpcId"]
        if vpc["State"] != "available":
            raise NotReady()
        subnet = self._find_subnet(ec2, vpc["VpcId"])
        if subnet is None:
            subnet = _call(
                ec2.create_subnet,
                VpcId=vpc["VpcId"],
                CidrBlock=resource.cidr_block,
                TagSpecifications=[{"ResourceType": "subnet", "Tags": self._tags(resource)}],
            )["Subnet"]
        if subnet["State"] != "available":
            raise NotReady()

    def _delete_vpc(self, resource) -> None:
        ec2 = self._client("ec2", resource.region)
        vpc = self._find_vpc(ec2, resource)
        if vpc is None:
            return  # never created, or already deleted
        resource.provider_id = vpc["VpcId"]
        while (subnet := self._find_subnet(ec2, vpc["VpcId"])) is not None:
            _call(ec2.delete_subnet, absent=("InvalidSubnetID.NotFound",), SubnetId=subnet["SubnetId"])
        _call(ec2.delete_vpc, absent=("InvalidVpcID.NotFound",), VpcId=vpc["VpcId"])

    def _subnet_of(self, ec2, resource) -> str:
        """The subnet a compute resource is launched in: its VPC's (remembered per VPC by the process)."""
        vpc = resource.vpc
        if not vpc.provider_id:
            raise ProviderError(
                f"Its VPC {vpc.public_id} does not exist at AWS (it was provisioned by another provider)."
            )
        key = (resource.region, vpc.provider_id)
        if key not in self._subnets:
            subnet = self._find_subnet(ec2, vpc.provider_id)
            if subnet is None:
                raise ProviderError(f"Its VPC {vpc.public_id} ({vpc.provider_id}) has no subnet at AWS.")
            self._subnets[key] = subnet["SubnetId"]
        return self._subnets[key]

    # --- instances -----------------------------------------------------------------------------------

    @staticmethod
    def _image(region: str) -> str:
        images = settings.ELBIA_AWS_AMI
        image = images.get(region) or images.get("*")
        if not image:
            raise ProviderError(f"No machine image is configured for {region} (ELBIA_AWS_AMI).")
        return image

    @staticmethod
    def _client_token(resource) -> str:
        """Idempotency of RunInstances: the same token for every attempt of one provisioning request, a new one
        when staff retry a failed resource (AWS would otherwise answer with the failed instance again)."""
        requested = resource.provisioning_started_at or resource.created_at
        return f"{resource.public_id}-{int(requested.timestamp())}"

    def _describe_instance(self, ec2, instance_id: str) -> dict | None:
        answer = _call(ec2.describe_instances, absent=("InvalidInstanceID.NotFound",), InstanceIds=[instance_id])
        instances = [
            instance for reservation in (answer or {}).get("Reservations", []) for instance in reservation["Instances"]
        ]
        return instances[0] if instances else None

    def _tagged_instance(self, ec2, resource, states: tuple[str, ...]) -> dict | None:
        """The resource's instance found by its tag (a worker died before saving its id), in one of ``states``."""
        answer = _call(
            ec2.describe_instances,
            Filters=_filters({f"tag:{RESOURCE_TAG}": [resource.public_id], "instance-state-name": states}),
        )
        instances = [instance for reservation in answer["Reservations"] for instance in reservation["Instances"]]
        return instances[0] if instances else None

    def _provision_instance(self, resource) -> None:
        ec2 = self._client("ec2", resource.region)
        if resource.provider_id:
            instance = self._describe_instance(ec2, resource.provider_id)
            if instance is None:
                raise NotReady()  # just launched: EC2's reads catch up with its writes within seconds
        else:
            instance = self._tagged_instance(ec2, resource, HEALTHY_INSTANCE_STATES) or self._launch(ec2, resource)
            resource.provider_id = instance["InstanceId"]
        state = instance["State"]["Name"]
        if state == "running":
            return
        if state == "pending":
            raise NotReady()
        reason = instance.get("StateReason", {}).get("Message") or f"it is {state}"
        raise ProviderError(f"Instance {instance['InstanceId']} did not start: {reason}")

    def _launch(self, ec2, resource) -> dict:
        tags = self._tags(resource)
        answer = _call(
            ec2.run_instances,
            ImageId=self._image(resource.region),
            InstanceType=resource.instance_type,
            MinCount=1,
            MaxCount=1,
            SubnetId=self._subnet_of(ec2, resource),
            ClientToken=self._client_token(resource),
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
        )
        instance = answer["Instances"][0]
        logger.info("Resource %s: launched instance %s", resource.public_id, instance["InstanceId"])
        return instance

    def _terminate_instance(self, resource) -> None:
        ec2 = self._client("ec2", resource.region)
        if resource.provider_id:
            instance = self._describe_instance(ec2, resource.provider_id)
        else:
            instance = self._tagged_instance(ec2, resource, LISTED_INSTANCE_STATES)
        if instance is None or instance["State"]["Name"] == "terminated":
            return
        resource.provider_id = instance["InstanceId"]
        if instance["State"]["Name"] != "shutting-down":
            answer = _call(
                ec2.terminate_instances, absent=("InvalidInstanceID.NotFound",), InstanceIds=[resource.provider_id]
            )
            if answer is None:
                return
            if answer["TerminatingInstances"][0]["CurrentState"]["Name"] == "terminated":
                return
        raise NotReady()  # shutting down: done once EC2 reports it terminated

    # --- Lambda --------------------------------------------------------------------------------------

    @staticmethod
    def _lambda_configuration(function) -> dict:
        """What the function's Lambda configuration must be, in CreateFunction's and
        UpdateFunctionConfiguration's terms."""
        return {
            "Runtime": function.runtime_identifier,
            "Handler": function.handler,
            "MemorySize": function.memory_mb,
            "Timeout": function.timeout_s,
            "Role": settings.ELBIA_AWS_LAMBDA_ROLE_ARN,
            "Environment": {"Variables": dict(function.environment)},
        }

    @staticmethod
    def _lambda_value(configuration: dict, key: str):
        if key == "Environment":
            return {"Variables": configuration.get("Environment", {}).get("Variables", {})}
        return configuration.get(key)

    @staticmethod
    def _lambda_code_sha256(function) -> str:
        """The function's code hash as Lambda writes it (base64 of the digest; Elbia keeps it in hex)."""
        return base64.b64encode(bytes.fromhex(function.code_sha256)).decode() if function.code_sha256 else ""

    def _lambda_settled(self, lambda_, configuration: dict, function) -> None:
        """Wait (NotReady) while Lambda applies a change; fail with Lambda's reason if this deployment's failed.

        A failure older than this deployment (``LastModified`` before ``deployment_started``) is what the
        deployment is here to repair: a failed update is overwritten, a function that failed to create is
        deleted and created again.
        """
        state = configuration.get("State") or "Active"
        update = configuration.get("LastUpdateStatus") or "Successful"
        if state == "Pending" or update == "InProgress":
            raise NotReady()
        changed = _lambda_time(configuration.get("LastModified", ""))
        ours = changed is None or function.deployment_started is None or changed >= function.deployment_started
        if state == "Failed":
            if ours:
                raise ProviderError(configuration.get("StateReason") or "Lambda could not create the function.")
            _call(
                lambda_.delete_function,
                absent=("ResourceNotFoundException",),
                FunctionName=configuration["FunctionArn"],
            )
            raise NotReady()
        if update == "Failed" and ours:
            raise ProviderError(configuration.get("LastUpdateStatusReason") or "Lambda could not apply the update.")

    def _delete_lambda(self, resource) -> None:
        name = resource.provider_id
        if not name:  # never deployed, or a worker died before saving the ARN: the function's own name
            function = getattr(resource, "function", None)  # the reverse one-to-one raises without a function
            name = function.public_id if function is not None else ""
        if name:
            lambda_ = self._client("lambda", resource.region)
            _call(lambda_.delete_function, absent=("ResourceNotFoundException",), FunctionName=name)

    # --- drift inventories ---------------------------------------------------------------------------

    def _instance_inventory(self, region: str) -> dict[str, str]:
        pages = (
            self._client("ec2", region)
            .get_paginator("describe_instances")
            .paginate(
                Filters=_filters({"tag-key": [RESOURCE_TAG], "instance-state-name": LISTED_INSTANCE_STATES}),
                PaginationConfig={"PageSize": PAGE_SIZE},
            )
        )
        found = {}
        with _aws_errors():
            for page in pages:
                for reservation in page["Reservations"]:
                    for instance in reservation["Instances"]:
                        state = instance["State"]["Name"]
                        found[instance["InstanceId"]] = "" if state in HEALTHY_INSTANCE_STATES else state
        return found

    def _vpc_inventory(self, region: str) -> dict[str, str]:
        pages = (
            self._client("ec2", region)
            .get_paginator("describe_vpcs")
            .paginate(Filters=_filters({"tag-key": [RESOURCE_TAG]}), PaginationConfig={"PageSize": PAGE_SIZE})
        )
        with _aws_errors():
            return {vpc["VpcId"]: "" for page in pages for vpc in page["Vpcs"]}

    def _lambda_inventory(self, region: str) -> dict[str, str]:
        pages = self._client("lambda", region).get_paginator("list_functions").paginate()
        with _aws_errors():
            return {function["FunctionArn"]: "" for page in pages for function in page["Functions"]}
