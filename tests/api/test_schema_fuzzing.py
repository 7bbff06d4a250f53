"""Schema fuzzing: schemathesis generates requests for every /v1 operation from /v1/openapi.json."""

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

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
    "POST /v1/resources": "the VPC must exist; names must be printable",
    "PATCH /v1/resources/{id}": "names and tags must be printable; a VPC name must be free",
    "GET /v1/usage": "the month must not be in the future",
    "POST /v1/usage/events": "each event names an existing function",
    "POST /v1/functions": "the handler must suit the runtime; names must be unique",
    "PATCH /v1/functions/{id}": "the handler must suit the runtime",
    "PUT /v1/functions/{id}/code": "the body must be a ZIP archive holding the handler's file",
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
            # Query parameters the schema does not name are ignored, as documented in docs/quality-gates.md.
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
