"""ELBIA_PROVIDER=aws against a real AWS API emulator (moto in server mode, the ``aws_endpoint`` fixture).

Nothing is mocked: the public API and a real Celery worker do the work through boto3, then the tests ask
the emulator, through boto3, what exists.
"""

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from elbia.providers import NotReady, ProviderError, TransientProviderError, get_provider
from elbia.providers.aws import ACCOUNT_TAG, FUNCTION_TAG, RESOURCE_TAG, _translate
from functions.code import code_read
from functions.models import Function
from functions.tasks import detect_function_drift
from resources.models import Resource, ResourceStatus
from resources.tasks import detect_resource_drift, provision_resource
from tests.functions.code_archives import zip_of
from tests.functions.test_lifecycle import wait_for_status as wait_for
from tests.resources.factories import ComputeFactory
from tests.resources.test_lifecycle import wait_for_status, wait_until_idle

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
LIST = "/v1/resources"
FUNCTIONS = "/v1/functions"
AMI = "ami-760aaa0f"  # one of the emulator's own machine images (Amazon Linux), present in every region


class Emulator:
    """boto3 clients of the emulator, to ask it what exists."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def client(self, service: str, region: str = "us-east-1"):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint)

    def instances(self, resource_id: str, region: str = "us-east-1") -> list[dict]:
        """Every instance tagged with the resource's public id, whatever its state."""
        answer = self.client("ec2", region).describe_instances(
            Filters=[{"Name": f"tag:{RESOURCE_TAG}", "Values": [resource_id]}]
        )
        return [instance for reservation in answer["Reservations"] for instance in reservation["Instances"]]

    def vpc(self, vpc_id: str, region: str = "us-east-1") -> dict | None:
        try:
            return self.client("ec2", region).describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
        except ClientError as error:
            assert error.response["Error"]["Code"] == "InvalidVpcID.NotFound"
            return None

    def lambda_function(self, name: str, region: str = "us-east-1") -> dict | None:
        """GetFunction's answer (configuration, tags), or None when Lambda has no such function."""
        try:
            return self.client("lambda", region).get_function(FunctionName=name)
        except ClientError as error:
            assert error.response["Error"]["Code"] == "ResourceNotFoundException"
            return None

    def subnets(self, vpc_id: str, region: str = "us-east-1") -> list[dict]:
        filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        return self.client("ec2", region).describe_subnets(Filters=filters)["Subnets"]


@pytest.fixture(scope="session")
def lambda_role(aws_endpoint) -> str:
    """An execution role in the emulator's IAM (Lambda refuses a role that does not exist)."""
    iam = boto3.client("iam", region_name="us-east-1", endpoint_url=aws_endpoint)
    try:
        return iam.create_role(RoleName="elbia-lambda-tests", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except ClientError:
        return iam.get_role(RoleName="elbia-lambda-tests")["Role"]["Arn"]


@pytest.fixture
def aws(settings, aws_endpoint, lambda_role) -> Emulator:
    """Elbia configured with ELBIA_PROVIDER=aws, pointed at the emulator."""
    settings.ELBIA_PROVIDER = "aws"
    settings.ELBIA_AWS_ENDPOINT_URL = aws_endpoint
    settings.ELBIA_AWS_AMI = {"*": AMI}
    settings.ELBIA_AWS_LAMBDA_ROLE_ARN = lambda_role
    settings.ELBIA_POLL_MAX = 1  # looks at most a second apart, so a busy machine still finishes in time
    return Emulator(aws_endpoint)


def create(api, **fields) -> dict:
    body = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", **fields}
    response = api.post(LIST, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_instance_runs_in_its_vpc_and_is_terminated_when_deleted(celery_worker, api, account, aws):
    created = create(api, name="web")
    resource = wait_for_status(api, created["id"], "active")
    vpc = wait_for_status(api, created["vpc"], "active")

    assert resource["provider_id"].startswith("i-") and vpc["provider_id"].startswith("vpc-")
    (instance,) = aws.instances(created["id"])
    assert instance["InstanceId"] == resource["provider_id"]
    assert instance["State"]["Name"] == "running"
    assert instance["InstanceType"] == "t3.micro"
    assert instance["ImageId"] == AMI
    (subnet,) = aws.subnets(vpc["provider_id"])
    assert (instance["VpcId"], instance["SubnetId"]) == (vpc["provider_id"], subnet["SubnetId"])
    tags = {tag["Key"]: tag["Value"] for tag in instance["Tags"]}
    assert tags[RESOURCE_TAG] == created["id"] and tags[ACCOUNT_TAG] == str(account.pk)
    assert aws.vpc(vpc["provider_id"])["CidrBlock"] == "172.31.0.0/16"  # the region's default VPC

    assert api.delete(f"{LIST}/{created['id']}").status_code == 202
    wait_for_status(api, created["id"], "deleted")
    assert [instance["State"]["Name"] for instance in aws.instances(created["id"])] == ["terminated"]

    assert api.delete(f"{LIST}/{created['vpc']}").status_code == 202
    wait_for_status(api, created["vpc"], "deleted")
    assert aws.vpc(vpc["provider_id"]) is None
    assert aws.subnets(vpc["provider_id"]) == []


def test_named_vpc_gets_its_cidr_block_and_one_subnet(celery_worker, api, aws):
    body = {"type": "vpc", "region": "eu-west-1", "name": "backend", "cidr_block": "10.20.0.0/16"}
    created = api.post(LIST, body, format="json").json()
    vpc = wait_for_status(api, created["id"], "active")
    assert aws.vpc(vpc["provider_id"], "eu-west-1")["CidrBlock"] == "10.20.0.0/16"
    assert [subnet["CidrBlock"] for subnet in aws.subnets(vpc["provider_id"], "eu-west-1")] == ["10.20.0.0/16"]


def test_a_refused_instance_type_fails_with_aws_message(celery_worker, api, aws):
    created = create(api, region="eu-north-1", instance_type="t2.micro")  # no t2 in Stockholm
    failed = wait_for_status(api, created["id"], "failed")
    assert "The instance type 't2.micro' does not exist" in failed["failure_reason"]
    assert failed["provider_id"] is None
    assert aws.instances(created["id"], "eu-north-1") == []
    assert api.get(f"{LIST}/{created['vpc']}").json()["status"] == "active"  # its VPC is fine


def test_instance_terminated_outside_elbia_is_caught_by_the_drift_check(celery_worker, api, aws):
    doomed, kept = create(api), create(api)
    instance_id = wait_for_status(api, doomed["id"], "active")["provider_id"]
    wait_for_status(api, kept["id"], "active")
    aws.client("ec2").terminate_instances(InstanceIds=[instance_id])

    assert detect_resource_drift() == {"compute": 1, "vpc": 0}
    failed = api.get(f"{LIST}/{doomed['id']}").json()
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == (
        "Drift: its instance was deleted or terminated outside Elbia (the provider no longer reports it)."
    )
    assert api.get(f"{LIST}/{kept['id']}").json()["status"] == "active"
    assert detect_resource_drift() == {"compute": 0, "vpc": 0}  # found once

    assert api.delete(f"{LIST}/{doomed['id']}").status_code == 202  # a drifted resource is deleted as usual
    wait_for_status(api, doomed["id"], "deleted")


def test_the_same_provisioning_twice_launches_one_instance(celery_worker, api, account, aws):
    vpc_id = create(api)["vpc"]
    wait_for_status(api, vpc_id, "active")
    vpc = Resource.objects.get(public_id=vpc_id)

    # A worker that died right after launching (the instance exists, its id was never saved), then the
    # message delivered twice: one instance in the end.
    resource = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING, provisioned_at=None)
    with pytest.raises(NotReady):
        get_provider().provision(resource)
    assert Resource.objects.get(pk=resource.pk).provider_id == ""
    provision_resource.delay(resource.pk)
    provision_resource.delay(resource.pk)
    wait_for_status(api, resource.public_id, "active")
    wait_until_idle()

    (instance,) = aws.instances(resource.public_id)
    assert instance["InstanceId"] == Resource.objects.get(pk=resource.pk).provider_id


def test_the_provider_starts_work_then_finds_it_done_on_a_later_look(api, account, aws):
    vpc = create(api)["vpc"]  # no worker: the test plays its part
    vpc = Resource.objects.get(public_id=vpc)
    get_provider().provision(vpc)  # the emulator's VPCs are available at once
    Resource.objects.filter(pk=vpc.pk).update(provider_id=vpc.provider_id, status=ResourceStatus.ACTIVE)
    resource = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PROVISIONING, provisioned_at=None)

    with pytest.raises(NotReady):  # launched: pending
        get_provider().provision(resource)
    assert aws.instances(resource.public_id)[0]["InstanceId"] == resource.provider_id
    get_provider().provision(resource)  # running: done

    with pytest.raises(NotReady):  # shutting down
        get_provider().deprovision(resource)
    get_provider().deprovision(resource)  # terminated: done
    assert aws.instances(resource.public_id)[0]["State"]["Name"] == "terminated"


def lambda_sha256(archive: bytes) -> str:
    """A ZIP's hash as Lambda reports it (base64 of the sha256 digest)."""
    return base64.b64encode(hashlib.sha256(archive).digest()).decode()


def test_function_is_deployed_to_lambda_redeployed_on_changes_and_deleted(celery_worker, api, account, aws):
    body = {
        "name": "greeter",
        "runtime": "Node.js 20",
        "handler": "index.handler",
        "memory_mb": 256,
        "timeout_s": 10,
        "environment": {"GREETING": "hello"},
    }
    created = api.post(FUNCTIONS, body, format="json").json()
    function = wait_for(api, f"{FUNCTIONS}/{created['id']}", "active")

    deployed = aws.lambda_function(created["id"])
    configuration = deployed["Configuration"]
    assert function["provider_id"] == configuration["FunctionArn"]
    assert (configuration["Runtime"], configuration["Handler"]) == ("nodejs20.x", "index.handler")
    assert (configuration["MemorySize"], configuration["Timeout"]) == (256, 10)
    assert configuration["Environment"]["Variables"] == {"GREETING": "hello"}  # decrypted for Lambda only
    assert configuration["Role"] == aws_role(aws)
    stored = Function.objects.get(public_id=created["id"])
    assert configuration["CodeSha256"] == lambda_sha256(code_read(stored.code_sha256))  # the starter code
    assert deployed["Tags"][FUNCTION_TAG] == created["id"] and deployed["Tags"][ACCOUNT_TAG] == str(account.pk)
    resource = api.get(f"{LIST}/{created['resource']}").json()
    assert (resource["memory"], resource["provider_id"]) == ("256MB", configuration["FunctionArn"])

    change = {"memory_mb": 512, "environment": {"GREETING": "bonjour", "LANG": "fr"}}
    assert api.patch(f"{FUNCTIONS}/{created['id']}", change, format="json").status_code == 200
    wait_for(api, f"{FUNCTIONS}/{created['id']}", "active")
    configuration = aws.lambda_function(created["id"])["Configuration"]
    assert configuration["MemorySize"] == 512
    assert configuration["Environment"]["Variables"] == {"GREETING": "bonjour", "LANG": "fr"}
    assert api.get(f"{LIST}/{created['resource']}").json()["memory"] == "512MB"

    code = zip_of({"index.mjs": "export const handler = async () => 'v2';\n"})
    uploaded = api.put(f"{FUNCTIONS}/{created['id']}/code", data=code, content_type="application/zip")
    assert uploaded.status_code == 200, uploaded.content
    assert uploaded.json()["status"] == "deploying"
    redeployed = wait_for(api, f"{FUNCTIONS}/{created['id']}", "active")
    # the API's hex sha256 and Lambda's base64 CodeSha256 are the same digest
    lambda_hash = aws.lambda_function(created["id"])["Configuration"]["CodeSha256"]
    assert lambda_hash == lambda_sha256(code) == base64.b64encode(bytes.fromhex(redeployed["code_sha256"])).decode()

    assert api.delete(f"{FUNCTIONS}/{created['id']}").status_code == 202
    wait_for(api, f"{FUNCTIONS}/{created['id']}", "deleted")
    assert aws.lambda_function(created["id"]) is None


def aws_role(aws: Emulator) -> str:
    return aws.client("iam").get_role(RoleName="elbia-lambda-tests")["Role"]["Arn"]


def test_a_function_lambda_refuses_fails_with_its_message(celery_worker, api, aws, settings):
    settings.ELBIA_AWS_LAMBDA_ROLE_ARN = "arn:aws:iam::123456789012:role/does-not-exist"
    body = {"name": "no-role", "runtime": "Python 3.12", "handler": "lambda_function.lambda_handler"}
    response = api.post(FUNCTIONS, body, format="json")
    created = response.json()
    failed = wait_for(api, f"{FUNCTIONS}/{created['id']}", "failed")
    assert "The role defined for the function cannot be assumed by Lambda." in failed["failure_reason"]
    assert aws.lambda_function(created["id"]) is None


def test_function_deleted_outside_elbia_is_caught_by_the_drift_check(celery_worker, api, aws):
    body = {"name": "doomed", "runtime": "Node.js 20", "handler": "index.handler"}
    created = api.post(FUNCTIONS, body, format="json").json()
    wait_for(api, f"{FUNCTIONS}/{created['id']}", "active")
    aws.client("lambda").delete_function(FunctionName=created["id"])

    assert detect_function_drift() == 1
    reason = "Drift: its Lambda function was deleted or terminated outside Elbia (the provider no longer reports it)."
    function = api.get(f"{FUNCTIONS}/{created['id']}").json()
    assert (function["status"], function["failure_reason"]) == ("failed", reason)
    resource = api.get(f"{LIST}/{created['resource']}").json()
    assert (resource["status"], resource["failure_reason"]) == ("failed", reason)
    assert detect_function_drift() == 0


def test_an_endpoint_that_does_not_answer_is_a_transient_error(account, aws, settings):
    settings.ELBIA_AWS_ENDPOINT_URL = "http://127.0.0.1:9"  # the discard port: nothing listens
    vpc = Resource(account=account, type="vpc", region="us-east-1", name="x", cidr_block="10.0.0.0/16")
    with pytest.raises(TransientProviderError, match="AWS did not answer"):
        get_provider().provision(vpc)


@pytest.mark.parametrize(
    ("code", "status", "transient"),
    [
        ("Throttling", 400, True),
        ("RequestLimitExceeded", 503, True),
        ("InternalError", 500, True),
        ("", 502, True),
        ("InvalidParameterValue", 400, False),
        ("VpcLimitExceeded", 400, False),
    ],
)
def test_aws_errors_are_transient_or_final(code, status, transient):
    error = ClientError(
        {"Error": {"Code": code, "Message": "Said AWS."}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )
    translated = _translate(error)
    assert isinstance(translated, TransientProviderError if transient else ProviderError)
    assert "Said AWS." in str(translated)


def start_django(**environment) -> subprocess.CompletedProcess:
    """``manage.py check`` in a fresh process with ``environment``, without any AWS credentials around."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "ELBIA_AWS_")) and key != "ELBIA_PROVIDER"
    }
    env.update(
        AWS_SHARED_CREDENTIALS_FILE="/nonexistent",
        AWS_CONFIG_FILE="/nonexistent",
        AWS_EC2_METADATA_DISABLED="true",
        **environment,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_missing_configuration_stops_the_process_at_start_naming_what_is_missing():
    started = start_django(ELBIA_PROVIDER="aws")
    assert started.returncode != 0
    for missing in ("AWS_ACCESS_KEY_ID", "ELBIA_AWS_AMI", "ELBIA_AWS_LAMBDA_ROLE_ARN"):
        assert missing in started.stderr

    started = start_django(
        ELBIA_PROVIDER="aws",
        AWS_ACCESS_KEY_ID="key",
        AWS_SECRET_ACCESS_KEY="secret",
        ELBIA_AWS_AMI="us-east-1=ami-0123456789abcdef0",
        ELBIA_AWS_LAMBDA_ROLE_ARN="arn:aws:iam::123456789012:role/elbia-lambda",
    )
    assert started.returncode == 0, started.stderr

    started = start_django(ELBIA_PROVIDER="aws", ELBIA_AWS_AMI="us-east-1=ubuntu")
    assert started.returncode != 0
    assert "ELBIA_AWS_AMI='us-east-1=ubuntu' is invalid: 'ubuntu' is not an AMI id" in started.stderr


# --- Invocations: Lambda's Invoke ---------------------------------------------------------------------------
# moto runs a Lambda function's code only in Docker, which the test machines do not have. Its Docker-free
# Lambda ("use_docker": false, switched on through its own API for these tests) answers Invoke with the
# event it was sent, with no log and no error: so these tests check the call Elbia makes and what it does
# with the answer (the shape, the headers, the metering), not a real run. What Lambda says of a failed run
# (FunctionError, the REPORT line) is checked on Lambda's documented answers below.


@pytest.fixture
def docker_free_lambda(aws):
    """The emulator's Lambda without Docker (Invoke echoes the event), for this test only."""
    import httpx

    httpx.post(f"{aws.endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}).raise_for_status()
    yield aws
    httpx.post(f"{aws.endpoint}/moto-api/config", json={"lambda": {"use_docker": True}}).raise_for_status()


def test_an_invocation_is_lambdas_invoke_and_is_metered(celery_worker, api, docker_free_lambda):
    from billing.models import UsageEvent

    body = {"name": "echo", "runtime": "Java 21", "handler": "example.Handler::handleRequest"}
    created = api.post(FUNCTIONS, body, format="json").json()
    wait_for(api, f"{FUNCTIONS}/{created['id']}", "active")
    event = {"order": 42, "items": ["a", "b"]}

    answer = api.post(f"{FUNCTIONS}/{created['id']}/invocations", event, format="json")  # a Java function runs
    assert answer.status_code == 200, answer.content
    assert answer.json() == event  # what the emulator's Lambda answers
    invocation_id = answer["X-Elbia-Invocation-Id"]
    assert "X-Elbia-Function-Error" not in answer and answer["X-Elbia-Cold-Start"] == "false"
    assert float(answer["X-Elbia-Duration-Ms"]) > 0
    metered = UsageEvent.objects.get(event_id=invocation_id)
    assert metered.duration_ms == int(answer["X-Elbia-Billed-Duration-Ms"]) and metered.memory_mb == 128

    queued = api.post(
        f"{FUNCTIONS}/{created['id']}/invocations", {"later": True}, format="json", HTTP_X_ELBIA_INVOCATION_TYPE="Event"
    )
    assert queued.status_code == 202
    read = wait_for(api, f"{FUNCTIONS}/{created['id']}/invocations/{queued.json()['id']}", "succeeded")
    assert read["result"] == {"later": True}


def test_lambdas_answers_become_the_invocations_answer():
    from elbia.providers.aws import REPORT_DURATION, REPORT_INIT_DURATION
    from elbia.providers.base import InvokeResult
    from functions.invocations import outcome_of

    log = (
        "START RequestId: 8f5 Version: $LATEST\n[ERROR] KeyError: 'x'\nEND RequestId: 8f5\n"
        "REPORT RequestId: 8f5\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 40 MB\tInit Duration: 150.50 ms\t\n"
    )
    assert REPORT_DURATION.search(log).group(1) == "12.34"
    assert REPORT_INIT_DURATION.search(log).group(1) == "150.50"
    raised = outcome_of(
        InvokeResult(
            payload=b'{"errorMessage": "\'x\'", "errorType": "KeyError", "requestId": "8f5", "stackTrace": ["  File"]}',
            function_error="Unhandled",
            log_tail=log,
            duration_ms=12.34,
            init_duration_ms=150.5,
        ),
        request_id="EXEC_0000000001",
    )
    assert raised.error == {"errorType": "KeyError", "errorMessage": "'x'", "trace": ["  File"]}
    assert (raised.ok, raised.billed_duration_ms, raised.cold, raised.init_duration_ms) == (False, 13, True, 150.5)
    timed_out = outcome_of(
        InvokeResult(payload=b'{"errorMessage": "Task timed out after 3.00 seconds"}', function_error="Unhandled",
                     log_tail="", duration_ms=3000.0),
        request_id="EXEC_0000000002",
    )  # fmt: skip
    assert timed_out.error["errorType"] == "Unhandled" and timed_out.error["errorMessage"].startswith("Task timed out")
    returned = outcome_of(
        InvokeResult(payload=b"null", function_error=None, log_tail="", duration_ms=0.2), request_id="x"
    )
    assert (returned.ok, returned.result, returned.billed_duration_ms, returned.cold) == (True, None, 1, False)
