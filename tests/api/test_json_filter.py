"""Tests for elbia.api.json_filter: operators, every refusal and its message, limits at their boundaries, the
tag-key safety rules, SQL on SQLite and PostgreSQL, real row matching on an in-memory SQLite database, and
property tests that no input raises anything but InvalidParameter nor reaches a field outside the whitelist.

The module needs no project database: it configures Django itself when nothing else has, and it declares its
models in an isolated app registry, compiled and run on a private in-memory SQLite connection.
"""

import json
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import django
from django.apps import apps
from django.conf import settings

if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth"],
        USE_TZ=True,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    )
if not apps.ready:
    django.setup()

import pytest
from django.db import models
from django.db.models import F, Q
from django.db.models.fields.json import HasKey, KeyTextTransform
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Lookup,
    StartsWith,
)
from django.db.utils import ConnectionHandler
from django.test.utils import isolate_apps
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from elbia.api.exceptions import InvalidParameter
from elbia.api.json_filter import FilterField, JsonFilter

with isolate_apps("django.contrib.contenttypes"):

    class Network(models.Model):
        public_id = models.CharField(max_length=40)

        class Meta:
            app_label = "contenttypes"

    class Machine(models.Model):
        public_id = models.CharField(max_length=40)
        name = models.CharField(max_length=100, null=True)
        status = models.CharField(max_length=20)
        size = models.BigIntegerField(null=True)
        created_at = models.DateTimeField()
        network = models.ForeignKey(Network, null=True, on_delete=models.CASCADE)
        tags = models.JSONField(default=dict)

        class Meta:
            app_label = "contenttypes"


ORM_PATHS = {
    "id": "public_id",
    "name": "name",
    "status": "status",
    "created_at": "created_at",
    "size": "size",
    "vpc": "network__public_id",
}
MACHINE_FILTER = JsonFilter(
    fields={
        "id": FilterField(ORM_PATHS["id"]),
        "name": FilterField(ORM_PATHS["name"]),
        "status": FilterField(ORM_PATHS["status"], kind="choice", choices=("pending", "active", "failed")),
        "created_at": FilterField(ORM_PATHS["created_at"], kind="datetime"),
        "size": FilterField(ORM_PATHS["size"], kind="integer"),
        "vpc": FilterField(ORM_PATHS["vpc"]),
    },
    tags_field="tags",
)
UNTAGGED_FILTER = JsonFilter(fields={"name": FilterField("name")})

DATABASES = ConnectionHandler(
    {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
        "postgresql": {"ENGINE": "django.db.backends.postgresql", "NAME": "never_connected"},
    }
)
SQLITE = DATABASES["default"]

ALLOWED_LOOKUPS = {"exact", "in", "gt", "gte", "lt", "lte", "contains", "startswith", "isnull"}
TAG_LOOKUP_CLASSES = (Exact, In, GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual, Contains, StartsWith)
TAG_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_.:/-]{0,63}")
JAN_1 = datetime(2025, 1, 1, tzinfo=UTC)


def compile_filter(document: Any, json_filter: JsonFilter = MACHINE_FILTER) -> Q:
    return json_filter.compile(document if isinstance(document, str) else json.dumps(document))


def refusal(document: Any, json_filter: JsonFilter = MACHINE_FILTER) -> str:
    with pytest.raises(InvalidParameter) as caught:
        compile_filter(document, json_filter)
    message = str(caught.value.detail)
    assert message.startswith("Parameter 'filter'")
    return message


def sql(q: Q, vendor: str = "default") -> tuple[str, tuple]:
    return Machine.objects.filter(q).query.get_compiler(connection=DATABASES[vendor]).as_sql()


def postgresql_sql(q: Q) -> tuple[str, tuple]:
    pytest.importorskip("psycopg")
    return sql(q, "postgresql")


# --- Operators on plain fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"name": "web"}, Q(name__exact="web")),
        ({"name": {"$eq": "web"}}, Q(name__exact="web")),
        ({"name": {"$ne": "web"}}, ~Q(name__exact="web")),
        ({"name": {"$in": ["a", "b"]}}, Q(name__in=["a", "b"])),
        ({"name": {"$nin": ["a", "b"]}}, ~Q(name__in=["a", "b"])),
        ({"name": {"$gt": "m"}}, Q(name__gt="m")),
        ({"name": {"$gte": "m"}}, Q(name__gte="m")),
        ({"name": {"$lt": "m"}}, Q(name__lt="m")),
        ({"name": {"$lte": "m"}}, Q(name__lte="m")),
        ({"name": {"$contains": "eb"}}, Q(name__contains="eb")),
        ({"name": {"$startswith": "we"}}, Q(name__startswith="we")),
        ({"name": {"$exists": True}}, Q(name__isnull=False)),
        ({"name": {"$exists": False}}, Q(name__isnull=True)),
        ({"vpc": "RES_1"}, Q(network__public_id__exact="RES_1")),
        ({"status": {"$in": ["active", "pending"]}}, Q(status__in=["active", "pending"])),
        ({"status": {"$nin": ["failed"]}}, ~Q(status__in=["failed"])),
        ({"status": {"$ne": "failed"}}, ~Q(status__exact="failed")),
        ({"size": 3}, Q(size__exact=3)),
        ({"size": {"$gte": -(2**63), "$lte": 2**63 - 1}}, Q(size__gte=-(2**63)) & Q(size__lte=2**63 - 1)),
        ({"created_at": {"$gte": "2025-01-01T00:00:00Z"}}, Q(created_at__gte=JAN_1)),
        ({"created_at": {"$in": ["2025-01-01T00:00:00Z"]}}, Q(created_at__in=[JAN_1])),
        ({}, Q()),
    ],
)
def test_operators_on_plain_fields(document: dict, expected: Q) -> None:
    assert compile_filter(document) == expected


def test_keys_of_one_object_and_operators_of_one_field_are_anded() -> None:
    q = compile_filter({"name": {"$gte": "a", "$lt": "b"}, "status": "active"})
    assert q == Q(name__gte="a") & Q(name__lt="b") & Q(status__exact="active")


def test_contract_example_compiles_to_one_sql_query() -> None:
    q = compile_filter(
        '{"vpc":"RES_1","status":{"$in":["active","pending"]},"created_at":{"$gte":"2025-01-01T00:00:00Z"}}'
    )
    text, params = sql(q)
    assert text.count("SELECT") == 1
    assert '"contenttypes_network"."public_id" = %s' in text
    assert params == ("RES_1", "active", "pending", "2025-01-01 00:00:00")


def test_pattern_operators_escape_like_wildcards() -> None:
    _, params = sql(compile_filter({"name": {"$contains": "50%_x"}}))
    assert params == ("%50\\%\\_x%",)


def test_negation_of_a_nullable_field_keeps_null_rows() -> None:
    text, _ = sql(compile_filter({"name": {"$ne": "web"}}))
    assert 'NOT ("contenttypes_machine"."name" = %s AND "contenttypes_machine"."name" IS NOT NULL)' in text


# --- Kinds and values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-01T00:00:00Z", JAN_1),
        ("2025-01-01t00:00:00z", JAN_1),
        ("2025-01-01T02:00:00+02:00", JAN_1),
        ("2024-12-31T19:00:00-05:00", JAN_1),
        ("2025-01-01T00:00:00.5Z", JAN_1 + timedelta(milliseconds=500)),
        ("2025-01-01T00:00:00.123456789Z", JAN_1 + timedelta(microseconds=123456)),
    ],
)
def test_datetimes_are_rfc3339_and_become_utc(text: str, expected: datetime) -> None:
    ((lookup, value),) = compile_filter({"created_at": text}).children
    assert lookup == "created_at__exact"
    assert value == expected
    assert value.tzinfo == UTC


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-01T00:00:00",
        "2025-01-01",
        "2025-01-01 00:00:00Z",
        "2025-13-01T00:00:00Z",
        "2025-02-30T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2016-12-31T23:59:60Z",
        "2025-01-01T00:00:00+24:00",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "\uff12025-01-01T00:00:00Z",
        "2025-01-01T00:00:00.1234567890Z",
        "yesterday",
        "",
    ],
)
def test_invalid_datetimes_are_refused(text: str) -> None:
    message = refusal({"created_at": {"$lt": text}})
    assert "field 'created_at' takes an RFC 3339 date-time with a time zone" in message
    assert "(at filter.created_at.$lt)" in message


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"name": 5}, "field 'name' takes a string, not a number (at filter.name)"),
        ({"name": 1.5}, "field 'name' takes a string, not a number"),
        ({"name": True}, "field 'name' takes a string, not a boolean"),
        ({"name": None}, "field 'name' takes a string, not null"),
        ({"name": ["a"]}, "field 'name' takes a string, not an array"),
        ({"created_at": 0}, "field 'created_at' takes a string, not a number"),
        ({"size": "3"}, "field 'size' takes an integer, not a string"),
        ({"size": 3.0}, "field 'size' takes an integer, not a number"),
        ({"size": True}, "field 'size' takes an integer, not a boolean"),
        ({"status": "gone"}, "'gone' is not a valid status (at filter.status). Allowed: pending, active, failed."),
        ({"status": {"$in": ["active", "gone"]}}, "'gone' is not a valid status (at filter.status.$in[1])"),
        ({"tags.env": 1}, "field 'tags.env' takes a string, not a number"),
    ],
)
def test_values_of_the_wrong_type_are_refused(document: dict, problem: str) -> None:
    assert problem in refusal(document)


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"size": 2**63}, "an integer beyond 64 bits: '9223372036854775808'"),
        ({"size": -(2**63) - 1}, "an integer beyond 64 bits"),
        ({"name": 10**300}, "an integer beyond 64 bits"),
        ({"junk": [1, 2**64]}, "an integer beyond 64 bits"),
    ],
)
def test_integers_beyond_64_bits_are_refused_anywhere(document: dict, problem: str) -> None:
    assert problem in refusal(document)


@pytest.mark.parametrize(
    ("document", "operator"),
    [
        ({"status": {"$gt": "active"}}, "$gt"),
        ({"status": {"$contains": "act"}}, "$contains"),
        ({"created_at": {"$startswith": "2025"}}, "$startswith"),
        ({"size": {"$contains": "1"}}, "$contains"),
    ],
)
def test_operators_a_kind_does_not_support_are_refused(document: dict, operator: str) -> None:
    message = refusal(document)
    assert f"operator '{operator}' is not supported by" in message
    assert "Supported: $eq, $ne, $in, $nin, $exists" in message


@pytest.mark.parametrize("operand", [1, 0, "true", None, [], {}])
def test_exists_takes_a_boolean(operand: Any) -> None:
    assert "'$exists' takes true or false" in refusal({"name": {"$exists": operand}})


@pytest.mark.parametrize("operator", ["$in", "$nin"])
def test_in_lists_hold_1_to_100_values(operator: str) -> None:
    assert compile_filter({"name": {operator: ["v"] * 100}})
    for operand in (["v"] * 101, [], "v", {"v": 1}, None):
        message = refusal({"name": {operator: operand}})
        assert f"'{operator}' takes a list of 1 to 100 values (at filter.name.{operator})" in message


# --- Tags ---------------------------------------------------------------------------------------------------


def tag_condition(q: Q) -> tuple[HasKey, Lookup]:
    """The two children of a positive tag condition: the key test and the value lookup."""
    has_key, value_lookup = q.children
    return has_key, value_lookup


@pytest.mark.parametrize(
    ("operator", "operand", "lookup_class"),
    [
        ("$eq", "prod", Exact),
        ("$in", ["prod", "dev"], In),
        ("$gt", "a", GreaterThan),
        ("$gte", "a", GreaterThanOrEqual),
        ("$lt", "a", LessThan),
        ("$lte", "a", LessThanOrEqual),
        ("$contains", "ro", Contains),
        ("$startswith", "pr", StartsWith),
    ],
)
def test_tag_operators_build_key_and_value_expressions(operator: str, operand: Any, lookup_class: type) -> None:
    q = compile_filter({"tags.env": {operator: operand}})
    has_key, value_lookup = tag_condition(q)
    assert isinstance(has_key, HasKey) and has_key.lhs == F("tags") and has_key.rhs == "env"
    assert type(value_lookup) is lookup_class
    assert isinstance(value_lookup.lhs, KeyTextTransform)
    assert value_lookup.lhs.key_name == "env"
    assert value_lookup.lhs.get_source_expressions() == [F("tags")]


@pytest.mark.parametrize("operator", ["$ne", "$nin"])
def test_negative_tag_operators_negate_the_whole_condition(operator: str) -> None:
    operand = "prod" if operator == "$ne" else ["prod"]
    q = compile_filter({"tags.env": {operator: operand}})
    assert q.negated
    has_key, value_lookup = tag_condition(q)
    assert isinstance(has_key, HasKey) and isinstance(value_lookup, Exact if operator == "$ne" else In)


def test_tag_exists() -> None:
    present = compile_filter({"tags.env": {"$exists": True}})
    absent = compile_filter({"tags.env": {"$exists": False}})
    assert not present.negated and absent.negated
    for q in (present, absent):
        (has_key,) = q.children
        assert isinstance(has_key, HasKey) and has_key.rhs == "env"


def test_a_dot_in_a_tag_key_belongs_to_the_key() -> None:
    has_key, value_lookup = tag_condition(compile_filter({"tags.app.tier": "web"}))
    assert has_key.rhs == "app.tier" and value_lookup.lhs.key_name == "app.tier"


@pytest.mark.parametrize("key", ["a__b", "team/app:role-1", "A.b_c", "x" * 64])
def test_odd_tag_keys_only_ever_reach_sql_as_parameters(key: str) -> None:
    q = compile_filter({f"tags.{key}": {"$ne": "v"}})
    for text, params in (sql(q), postgresql_sql(q)):
        assert key not in text
        assert any(key in str(param) for param in params)


def test_postgresql_tag_sql_uses_the_key_operators() -> None:
    text, params = postgresql_sql(compile_filter({"tags.env": "prod"}))
    assert '("contenttypes_machine"."tags" ? %s AND ("contenttypes_machine"."tags" ->> %s) = %s)' in text
    assert params == ("env", "env", "prod")


@pytest.mark.parametrize(
    "key",
    ["", "x') OR 1=1 --", "1", "10", "-1", "1_0", "_a", ".a", "a b", "a'b", 'a"b', "é", "x" * 65, "a\u0660"],
)
def test_invalid_tag_keys_are_refused(key: str) -> None:
    message = refusal({f"tags.{key}": "v"})
    assert "invalid tag key" in message and "must start with a letter" in message


def test_tags_can_be_disabled() -> None:
    message = refusal({"tags.env": "prod"}, UNTAGGED_FILTER)
    assert "unknown field 'tags.env' (at filter.tags.env). Allowed: name." in message


# --- Combinators and limits ---------------------------------------------------------------------------------


def test_combinators() -> None:
    a, b = Q(name__exact="a"), Q(name__exact="b")
    assert compile_filter({"$and": [{"name": "a"}, {"name": "b"}]}) == a & b
    assert compile_filter({"$or": [{"name": "a"}, {"name": "b"}]}) == a | b
    assert compile_filter({"$not": {"name": "a"}}) == ~a
    assert compile_filter({"$or": [{"name": "a"}], "$not": {"name": "b"}}) == a & ~b


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"$and": {"name": "a"}}, "'$and' takes a non-empty list of filter objects (at filter.$and)"),
        ({"$or": []}, "'$or' takes a non-empty list of filter objects (at filter.$or)"),
        ({"$or": [{"name": "a"}, "b"]}, "'$or' takes filter objects, not a string (at filter.$or[1])"),
        ({"$and": [{}]}, "a filter object must not be empty (at filter.$and[0])"),
        ({"$not": [{"name": "a"}]}, "'$not' takes a filter object, not an array (at filter.$not)"),
        ({"$not": {}}, "a filter object must not be empty (at filter.$not)"),
        ({"name": {}}, "the operator object of field 'name' must not be empty (at filter.name)"),
        ({"$nor": []}, "unknown combinator '$nor' (at filter.$nor). Allowed: $and, $or, $not."),
        ({"$eq": "a"}, "unknown combinator '$eq'"),
        ({"colour": "red"}, "unknown field 'colour' (at filter.colour). Allowed: created_at, id, name, size, status"),
        ({"name": {"$regex": "."}}, "unknown operator '$regex' (at filter.name.$regex). Allowed: $eq, $ne,"),
        ({"name": {"eq": "a"}}, "unknown operator 'eq'"),
        ({"$or": [{"name": {"$in": [1]}}]}, "(at filter.$or[0].name.$in[0])"),
        ({"a b": 1}, "unknown field 'a b' (at filter['a b'])"),
    ],
)
def test_structural_errors_say_what_and_where(document: dict, problem: str) -> None:
    assert problem in refusal(document)


def nested_not(levels: int) -> dict:
    """A filter whose innermost object is at depth ``levels`` (the top-level object is depth 1)."""
    document: dict = {"name": "a"}
    for _ in range(levels - 1):
        document = {"$not": document}
    return document


def test_depth_4_is_accepted_and_5_refused() -> None:
    assert compile_filter(nested_not(4)) == ~~~Q(name__exact="a")
    assert "nesting is deeper than 4 (at filter.$not.$not.$not.$not)" in refusal(nested_not(5))
    assert compile_filter({"$and": [{"$or": [{"$not": {"name": "a"}}]}]})
    assert "nesting is deeper than 4" in refusal({"$and": [{"$or": [{"$not": {"$and": [{"name": "a"}]}}]}]})


def test_operator_objects_do_not_add_depth() -> None:
    assert compile_filter({"$not": {"$not": {"$not": {"name": {"$ne": "a", "$exists": True}}}}})


def test_20_conditions_are_accepted_and_21_refused() -> None:
    twenty = {"$or": [{"name": str(index)} for index in range(20)]}
    assert len(compile_filter(twenty).children) == 20
    assert "more than 20 conditions (at filter.$or[20].name)" in refusal({"$or": [*twenty["$or"], {"name": "x"}]})


def test_each_operator_of_a_field_is_one_condition() -> None:
    operators = {"$ne": "a", "$gt": "a", "$exists": True, "$contains": "a", "$startswith": "a"}
    assert compile_filter({"$and": [{"name": operators}] * 4})
    message = refusal({"$and": [{"name": operators}] * 4 + [{"tags.env": {"$exists": True}}]})
    assert "more than 20 conditions (at filter.$and[4].tags.env.$exists)" in message


def document_of_bytes(size: int, filler: str = "a") -> str:
    """A valid filter document of exactly ``size`` UTF-8 bytes."""
    skeleton = '{"name":""}'
    count, remainder = divmod(size - len(skeleton), len(filler.encode()))
    assert remainder == 0
    return '{"name":"' + filler * count + '"}'


def test_2048_bytes_are_accepted_and_2049_refused() -> None:
    assert compile_filter(document_of_bytes(2048))
    assert refusal(document_of_bytes(2049)) == "Parameter 'filter' is too long: 2049 bytes, at most 2048."


def test_the_size_limit_counts_utf8_bytes_not_characters() -> None:
    text = document_of_bytes(2048, filler="\u20ac")  # 3 bytes per character: 690 characters in all
    assert len(text) == 690
    assert compile_filter(text)
    assert "is too long: 2049 bytes" in refusal(text.replace('"}', 'a"}'))


# --- Documents the parser refuses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Parameter 'filter' is not valid JSON: Expecting value (line 1, column 1)."),
        ('{"name": "a"', "Parameter 'filter' is not valid JSON: Expecting ',' delimiter (line 1, column 13)."),
        ("{'name': 'a'}", "Parameter 'filter' is not valid JSON"),
        ('{"name": "a"} x', "Parameter 'filter' is not valid JSON: Extra data"),
        ("[]", "Parameter 'filter' must be a JSON object, not an array."),
        ('"a"', "Parameter 'filter' must be a JSON object, not a string."),
        ("3", "Parameter 'filter' must be a JSON object, not a number."),
        ("null", "Parameter 'filter' must be a JSON object, not null."),
        ("true", "Parameter 'filter' must be a JSON object, not a boolean."),
        ('{"name": "a", "name": "b"}', "Parameter 'filter' has a duplicate key 'name'."),
        ('{"name": {"$gt": "a", "$gt": "b"}}', "Parameter 'filter' has a duplicate key '$gt'."),
        ('{"name": NaN}', "Parameter 'filter' is not valid JSON: NaN is not a JSON value."),
        ('{"size": Infinity}', "Parameter 'filter' is not valid JSON: Infinity is not a JSON value."),
        ('{"size": -Infinity}', "Parameter 'filter' is not valid JSON: -Infinity is not a JSON value."),
        ('{"size": 1e400}', "Parameter 'filter' has a number out of range: '1e400'."),
        ("[" * 1500, "Parameter 'filter' is nested too deeply to parse."),
        ('{"name": ' + "[" * 1000 + "]" * 1000 + "}", "Parameter 'filter' is nested too deeply to parse."),
    ],
)
def test_unparseable_documents(text: str, message: str) -> None:
    assert refusal(text).startswith(message)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "a\\u0000b"}',
        '{"name": {"$in": ["ok", "\\u0000"]}}',
        '{"tags.env": "\\u0000"}',
        '{"created_at": "2025-01-01T00:00:00Z\\u0000"}',
        '{"na\\u0000me": "a"}',
        '{"status": "active\\u0000"}',
    ],
)
def test_nul_characters_are_refused(text: str) -> None:
    assert "a string with a NUL character" in refusal(text)


def test_unpaired_surrogates_are_refused() -> None:
    assert "unpaired surrogate" in refusal('{"name": "\\ud800"}')
    assert "unpaired surrogate" in refusal('{"\\udfff": 1}')
    assert refusal('{"name": "\ud800"}') == "Parameter 'filter' must be valid Unicode text."


def test_paired_surrogate_escapes_are_one_character() -> None:
    assert compile_filter('{"name": "\\ud83d\\ude00"}') == Q(name__exact="\U0001f600")


def test_long_user_text_is_cut_short_in_messages() -> None:
    message = refusal({"x" * 500: 1})
    assert "x" * 67 + "..." in message and "x" * 68 not in message


# --- Declarations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "declare",
    [
        lambda: FilterField("status", kind="choice"),
        lambda: FilterField("name", choices=("a",)),
        lambda: FilterField("name", kind="float"),
        lambda: JsonFilter(fields={"tags.env": FilterField("name")}),
        lambda: JsonFilter(fields={"$or": FilterField("name")}),
    ],
)
def test_misdeclarations_fail_loudly(declare: Any) -> None:
    with pytest.raises(ValueError):
        declare()


# --- Behaviour on a real database ---------------------------------------------------------------------------

ROWS = [
    # public_id, name, status, size, created_at, network, tags
    ("M1", "web", "active", 1, "2025-01-01 00:00:00", "N1", {"env": "prod", "app.tier": "front"}),
    ("M2", None, "pending", None, "2025-02-01 00:00:00", None, {"env": "dev"}),
    ("M3", "db", "failed", 3, "2024-12-01 00:00:00", "N1", {}),
]


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> Iterator[None]:
    """The tables and ROWS on the private SQLite connection, which pytest-django (when active) must let through."""
    with ExitStack() as stack:
        if request.config.pluginmanager.hasplugin("django"):
            blocker = request.getfixturevalue("django_db_blocker")
            if blocker is not None:
                stack.enter_context(blocker.unblock())
        with SQLITE.schema_editor() as editor:
            editor.create_model(Network)
            editor.create_model(Machine)
        with SQLITE.cursor() as cursor:
            cursor.execute('INSERT INTO "contenttypes_network" ("id", "public_id") VALUES (1, %s)', ["N1"])
            for public_id, name, status, size, created_at, network, tags in ROWS:
                cursor.execute(
                    'INSERT INTO "contenttypes_machine" ("public_id", "name", "status", "size", "created_at", '
                    '"network_id", "tags") VALUES (%s, %s, %s, %s, %s, %s, %s)',
                    [public_id, name, status, size, created_at, 1 if network else None, json.dumps(tags)],
                )
        yield


def matching_ids(q: Q) -> set[str]:
    query = Machine.objects.filter(q).values_list("public_id").query
    text, params = query.get_compiler(connection=SQLITE).as_sql()
    with SQLITE.cursor() as cursor:
        cursor.execute(text, params)
        return {public_id for (public_id,) in cursor.fetchall()}


@pytest.mark.usefixtures("database")
@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({}, {"M1", "M2", "M3"}),
        ({"name": "web"}, {"M1"}),
        ({"name": {"$ne": "web"}}, {"M2", "M3"}),
        ({"name": {"$nin": ["web", "db"]}}, {"M2"}),
        ({"name": {"$exists": False}}, {"M2"}),
        ({"$not": {"name": {"$startswith": "w"}}}, {"M2", "M3"}),
        ({"size": {"$gt": 1}}, {"M3"}),
        ({"$not": {"size": {"$lte": 1}}}, {"M2", "M3"}),
        ({"vpc": "N1", "status": {"$in": ["active", "failed"]}}, {"M1", "M3"}),
        ({"vpc": {"$exists": False}}, {"M2"}),
        ({"created_at": {"$gte": "2025-01-01T01:00:00+01:00"}}, {"M1", "M2"}),
        ({"created_at": {"$lt": "2024-12-31T19:00:00-05:00"}}, {"M3"}),
        ({"tags.env": "prod"}, {"M1"}),
        ({"tags.env": {"$ne": "prod"}}, {"M2", "M3"}),
        ({"tags.env": {"$nin": ["prod", "dev"]}}, {"M3"}),
        ({"$not": {"tags.env": {"$contains": "ro"}}}, {"M2", "M3"}),
        ({"tags.env": {"$exists": True}}, {"M1", "M2"}),
        ({"tags.env": {"$exists": False}}, {"M3"}),
        ({"tags.app.tier": {"$startswith": "fr"}}, {"M1"}),
        ({"$or": [{"tags.env": "dev"}, {"name": {"$contains": "d"}}]}, {"M2", "M3"}),
    ],
)
def test_matching_rows(document: dict, expected: set[str]) -> None:
    assert matching_ids(compile_filter(document)) == expected


# --- Properties ---------------------------------------------------------------------------------------------

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
FIELD_NAMES = [*ORM_PATHS, "tags.env", "tags.app.tier", "tags.a__b", "tags.1", "tags.", "colour", "name__gt"]
OPERATOR_NAMES = ["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$contains", "$startswith", "$exists"]
KEYS = st.sampled_from([*FIELD_NAMES, *OPERATOR_NAMES, "$and", "$or", "$not", "$regex", "", "__class__"]) | st.text()
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**63 + 2)
    | st.floats()
    | st.text()
    | st.text(st.characters(min_codepoint=0, max_codepoint=0x1F) | st.characters(categories=["Cs"]), max_size=3)
    | st.sampled_from(["active", "pending", "2025-01-01T00:00:00Z", "2025-01-01T00:00:00+14:00", "web"])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=30,
)


VALUES_BY_FIELD: dict[str, list[Any]] = {
    "id": ["M1", "M9"],
    "name": ["web", "d"],
    "status": ["active", "failed"],
    "created_at": ["2025-01-01T00:00:00Z", "2024-12-31T23:00:00-01:00"],
    "size": [1, 3],
    "vpc": ["N1"],
    "tags.env": ["prod", "dev"],
    "tags.app.tier": ["front"],
    "tags.a__b": ["x"],
}


def field_condition(field: str) -> st.SearchStrategy:
    """A bare value or an operator object for ``field``, with values of its kind and any operator."""
    value = st.sampled_from(VALUES_BY_FIELD[field])
    operand = value | st.lists(value, min_size=1, max_size=3) | st.booleans()
    operators = st.dictionaries(st.sampled_from(OPERATOR_NAMES), operand, min_size=1, max_size=2)
    return st.tuples(st.just(field), value | operators)


FILTER_OBJECTS = st.recursive(
    st.lists(st.sampled_from(list(VALUES_BY_FIELD)).flatmap(field_condition), min_size=1, max_size=3).map(dict),
    lambda children: st.one_of(
        st.fixed_dictionaries({"$and": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$or": st.lists(children, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"$not": children}),
    ),
    max_leaves=8,
)


def compile_or_refuse(text: str) -> Q | None:
    """Compile ``text``; InvalidParameter is an accepted outcome, any other exception fails the test."""
    try:
        q = MACHINE_FILTER.compile(text)
    except InvalidParameter as refused:
        assert str(refused.detail).startswith("Parameter 'filter'")
        return None
    assert isinstance(q, Q)
    assert_only_whitelisted_lookups(q)
    return q


def assert_only_whitelisted_lookups(node: Q) -> None:
    """Every leaf is a declared ORM path with an allowed lookup, or a tag expression over the tags field."""
    allowed_lookups = {f"{path}__{lookup}" for path in ORM_PATHS.values() for lookup in ALLOWED_LOOKUPS}
    for child in node.children:
        if isinstance(child, Q):
            assert_only_whitelisted_lookups(child)
        elif isinstance(child, tuple):
            lookup, _ = child
            assert lookup in allowed_lookups
        elif isinstance(child, HasKey):
            assert child.lhs == F("tags") and TAG_KEY.fullmatch(child.rhs)
        else:
            assert type(child) in TAG_LOOKUP_CLASSES
            assert isinstance(child.lhs, KeyTextTransform) and TAG_KEY.fullmatch(child.lhs.key_name)
            assert child.lhs.get_source_expressions() == [F("tags")]


@PROPERTY_SETTINGS
@given(st.text(max_size=2100))
def test_arbitrary_text_compiles_or_is_refused(text: str) -> None:
    compile_or_refuse(text)


JSON_TOKENS = [
    *'{}[]:,"',
    " ",
    "\\",
    "true",
    "false",
    "null",
    "NaN",
    "-Infinity",
    "1e400",
    "-0",
    "7",
    "1.5",
    str(2**64),
    '"name"',
    '"status"',
    '"size"',
    '"created_at"',
    '"tags.env"',
    '"tags.1"',
    '"$in"',
    '"$or"',
    '"$not"',
    '"$exists"',
    '"active"',
    '"2025-01-01T00:00:00Z"',
    '"\\u0000"',
    '"\\ud800"',
    '"\\ud83d\\ude00"',
    '"\\x"',
    "\x00",
]


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(JSON_TOKENS), max_size=60).map("".join))
def test_json_like_text_compiles_or_is_refused(text: str) -> None:
    compile_or_refuse(text)


@PROPERTY_SETTINGS
@given(JSON_VALUES, st.booleans())
def test_arbitrary_json_compiles_or_is_refused(document: Any, ensure_ascii: bool) -> None:
    compile_or_refuse(json.dumps(document, ensure_ascii=ensure_ascii))


@pytest.mark.usefixtures("database")
@PROPERTY_SETTINGS
@given(FILTER_OBJECTS)
def test_compiled_filters_run_on_a_real_database(document: dict) -> None:
    q = compile_or_refuse(json.dumps(document))
    if q is not None:
        assert matching_ids(q) <= {"M1", "M2", "M3"}
