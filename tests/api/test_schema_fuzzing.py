"""Schema fuzzing: schemathesis generates requests for every /v1 operation from /v1/openapi.json.

Two phases: each operation on its own (``test_api_conforms_to_its_schema``), and the stateful phase
(``test_workflows_conform_to_the_schema``): create an object, then act on what was created, following the
document's links (elbia.api.schema.link_creates), so statuses only an existing object can give (a 409 on a
deploying function) are checked against the schema too.
"""

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, settings

from elbia.accounts.services import token_issue
from elbia.config import parse_rate
from elbia.wsgi import application
from tests.factories import UserFactory

# Operations whose valid input also depends on the account's data or on rules JSON Schema cannot state
# (a VPC or function that must exist, a month not in the future, printable text, a filter's own grammar):
# a schema-valid request to them may be refused with a 400, and only there.
STATE_DEPENDENT = {
    "GET /v1/resources": "the filter parameter is a JSON document with its own grammar; a cursor as below",
    "GET /v1/functions": "a cursor must be one the list gave out, and excludes offset",
    "GET /v1/billing/invoices": "a cursor must be one the list gave out, and excludes offset",
    "GET /v1/functions/{function_id}/invocations": "a cursor must be one the list gave out, and excludes offset",
    "POST /v1/resources": "the VPC must exist; names must be printable",
    "PATCH /v1/resources/{id}": "names and tags must be printable; a VPC name must be free",
    "GET /v1/usage": "the month must not be in the future",
    "POST /v1/usage/events": "each event names an existing function",
    "POST /v1/functions": "the handler must suit the runtime; names must be unique",
    "PATCH /v1/functions/{id}": "the handler must suit the runtime",
    "PUT /v1/functions/{id}/code": "the body must be a ZIP archive holding the handler's file",
    "POST /v1/functions/{function_id}/invocations": "an Idempotency-Key already sent with another event is a 422",
}
STATE_DEPENDENT_STATUSES = ["2xx", "400", "401", "403", "404", "409", "422", "429"]
MAX_EXAMPLES = 25

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20250101,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            # No query parameters the schema does not name (the API refuses them; docs/quality-gates.md).
            "allow-extra-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "operations": [
            {
                "include-name": name,
                "checks": {"positive_data_acceptance": {"expected-statuses": STATE_DEPENDENT_STATUSES}},
            }
            for name in STATE_DEPENDENT
        ],
    }
)
# A function's code is sent as the raw bytes of a ZIP archive (``format: binary``).
schemathesis.serializer.alias("application/zip", "application/octet-stream")
schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", application, config=CONFIG)

# The stateful phase: valid data only (so creates succeed and there is something to act on), the same
# state-dependent statuses. DELETE answers 202 and the object stays readable while it is torn down
# (``deleting``, then ``deleted``): use_after_free, which expects a 404 after a 2xx DELETE, does not apply.
STATEFUL_CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20250101,
        "generation": {"mode": "positive", "deterministic": True, "allow-extra-parameters": False},
        "checks": {"use_after_free": {"enabled": False}},
        # The document's own links only (schemathesis would also infer some from the lists).
        "phases": {"stateful": {"enabled": True, "max-steps": 6, "inference": {"algorithms": []}}},
        "operations": [
            {
                "include-name": name,
                "checks": {"positive_data_acceptance": {"expected-statuses": STATE_DEPENDENT_STATUSES}},
            }
            for name in STATE_DEPENDENT
        ],
    }
)
stateful_schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", application, config=STATEFUL_CONFIG)


@stateful_schema.auth(refresh_interval=None)
class FuzzTokenAuth:
    """The stateful phase's credentials: the running test's token (``token``), as the bearer scheme says."""

    token = ""

    def get(self, case, context):
        return FuzzTokenAuth.token

    def set(self, case, token, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}


#: Scenarios the stateful phase runs: each a create and up to five steps after it (about 20 s here).
STATEFUL_SCENARIOS = 30


@pytest.fixture
def in_process_requests(db):
    """Requests served through the WSGI app keep the test's connection (as Django's test client does)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_token(in_process_requests, settings):
    settings.ELBIA_AUTH_RATE_LIMIT = parse_rate("1000000/hour")
    settings.ELBIA_RATE_LIMIT = parse_rate("1000000/hour")
    user = UserFactory()
    return token_issue(user=user, scopes=list(django_settings.SCOPES), rate_limit="1000000/hour").access_token


@schema.parametrize()
@settings(suppress_health_check=list(HealthCheck), deadline=None)
def test_api_conforms_to_its_schema(case, fuzz_token):
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_token}"})


def test_workflows_conform_to_the_schema(fuzz_token):
    """Create, then retrieve, change and delete what was created: every answer as the schema documents it."""
    chains = []  # (source, target, status) of each step that followed a link

    FuzzTokenAuth.token = fuzz_token

    class Workflow(stateful_schema.as_state_machine()):
        """Each scenario starts from the same state (a savepoint rolled back, an empty cache), so a replayed
        scenario behaves as it did: Hypothesis requires it, and a name taken by an earlier one is no 409."""

        def setup(self):
            self.savepoint = transaction.savepoint()
            cache.clear()

        def teardown(self):
            transaction.savepoint_rollback(self.savepoint)
            cache.clear()

        def step(self, input):
            output = super().step(input)
            if input.transition is not None and input.is_applied:
                source = input.transition.id.split(" -> ")[0]  # "POST /v1/functions -> [201] ... -> GET ..."
                chains.append((source, output.case.operation.label, output.response.status_code))
            return output

    Workflow.run(
        settings=settings(
            max_examples=STATEFUL_SCENARIOS,
            stateful_step_count=6,
            derandomize=True,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
    )
    # Not vacuous: objects were created and acted on through the links, with success.
    succeeded = {(source, target) for source, target, status in chains if 200 <= status < 300}
    for create in ("POST /v1/functions", "POST /v1/resources"):
        assert any(source == create for source, _ in succeeded), (create, chains)
    assert any(target.startswith(("PATCH", "DELETE")) for _, target in succeeded), chains
