"""GET /v1/regions and /v1/instance-types: the values clients can send, and the schema documenting them."""

import pytest

from resources.catalog import INSTANCE_TYPES, REGIONS

pytestmark = pytest.mark.django_db


def test_regions(api):
    regions = api.get("/v1/regions").json()
    assert {"code": "eu-west-1", "name": "Europe (Ireland)"} in regions
    assert [region["code"] for region in regions] == list(REGIONS)
    assert "us-east" not in REGIONS


def test_instance_types(api):
    kinds = api.get("/v1/instance-types").json()
    assert {"name": "t2.micro", "family": "t2", "vcpus": 1, "memory_mb": 1024} in kinds
    assert {kind["family"] for kind in kinds} == {"t2", "t3", "m5", "c5"}
    assert len(kinds) == len(INSTANCE_TYPES)


def test_catalogs_need_the_read_scope(make_client, user):
    client = make_client(user, scopes=["functions:read"])
    for url in ("/v1/regions", "/v1/instance-types"):
        assert client.get(url).json()["error"]["code"] == "insufficient_scope"


def test_openapi_documents_the_resource_endpoints(anonymous_api):
    paths = anonymous_api.get("/v1/openapi.json").json()["paths"]
    listing = paths["/v1/resources"]
    assert {"filter", "limit", "offset", "ordering", "type", "region", "status", "expand"} <= {
        parameter["name"] for parameter in listing["get"]["parameters"]
    }
    assert {"201", "400", "401", "403"} <= set(listing["post"]["responses"])
    assert {"202", "404", "409"} <= set(paths["/v1/resources/{id}"]["delete"]["responses"])
    assert "/v1/regions" in paths and "/v1/instance-types" in paths
