"""Environment values are encrypted at rest: the column holds Fernet tokens, code and the provider see plaintext."""

import io
import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from elbia.config import parse_fernet_keys
from elbia.encryption import UndecryptableSecret, decrypt
from functions.models import Function, FunctionStatus
from functions.services import function_update
from functions.tasks import deploy_function
from tests.functions.conftest import SECRET
from tests.functions.factories import FunctionFactory
from tests.functions.providers import EnvironmentRecordingProvider

pytestmark = pytest.mark.django_db

BASE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def raw_environment(function) -> dict:
    """The column as the database holds it, read past the model field."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT environment::text FROM functions_function WHERE id = %s", [function.pk])
        return json.loads(cursor.fetchone()[0])


def write_raw_environment(function, environment: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE functions_function SET environment = %s::jsonb WHERE id = %s",
            [json.dumps(environment), function.pk],
        )


def test_the_column_holds_names_in_clear_and_values_encrypted(api):
    body = {"name": "auth", "runtime": "Node.js 20", "handler": "index.handler", "environment": {"API_KEY": SECRET}}
    created = api.post("/v1/functions", body, format="json").json()
    function = Function.objects.get(public_id=created["id"])
    stored = raw_environment(function)
    assert list(stored) == ["API_KEY"] and SECRET not in json.dumps(stored)
    assert stored["API_KEY"].startswith("gAAAAA") and decrypt(stored["API_KEY"]) == SECRET
    assert function.environment == {"API_KEY": SECRET}
    assert created["environment"] == ["API_KEY"]
    assert api.get(f"/v1/functions/{created['id']}").json()["environment"] == ["API_KEY"]


def test_an_update_reencrypts_and_a_merge_keeps_the_other_values(account):
    function = FunctionFactory(account=account, environment={"KEEP": "kept-value", "CHANGE": "old-value"})
    first = raw_environment(function)
    function_update(function=function, environment={"CHANGE": SECRET})
    stored = raw_environment(function)
    assert SECRET not in json.dumps(stored) and "kept-value" not in json.dumps(stored)
    assert stored["CHANGE"] != first["CHANGE"]
    assert Function.objects.get(pk=function.pk).environment == {"KEEP": "kept-value", "CHANGE": SECRET}


def test_queryset_update_and_key_lookups(account):
    function = FunctionFactory(account=account)
    Function.objects.filter(pk=function.pk).update(environment={"TOKEN": SECRET})
    assert SECRET not in json.dumps(raw_environment(function))
    assert Function.objects.filter(environment__has_key="TOKEN").get().environment == {"TOKEN": SECRET}
    # A lookup on a value compares with the ciphertext: it cannot be used to guess a secret.
    assert not Function.objects.filter(environment__TOKEN=SECRET).exists()
    assert not Function.objects.filter(environment__TOKEN__startswith="s3").exists()


def test_the_admin_shows_names_only(staff_client, account):
    function = FunctionFactory(account=account, environment={"API_KEY": SECRET})
    page = staff_client.get(f"/admin/functions/function/{function.pk}/change/").content.decode()
    assert "API_KEY" in page and SECRET not in page and raw_environment(function)["API_KEY"] not in page


def test_the_provider_is_handed_plaintext(settings, account):
    settings.ELBIA_PROVIDER = "tests.functions.providers.EnvironmentRecordingProvider"
    function = FunctionFactory(
        account=account, status=FunctionStatus.CREATED, deployed_at=None, environment={"API_KEY": SECRET}
    )
    assert deploy_function.apply(args=[function.pk]).get() == "done"
    assert EnvironmentRecordingProvider.environments.pop(function.pk) == {"API_KEY": SECRET}


def test_key_rotation(settings, account):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ELBIA_SECRETS_KEY = [old]
    function = FunctionFactory(account=account, environment={"API_KEY": SECRET})
    settings.ELBIA_SECRETS_KEY = [new, old]  # new first: it encrypts, both decrypt
    assert Function.objects.get(pk=function.pk).environment == {"API_KEY": SECRET}
    out = io.StringIO()
    call_command("reencrypt_environment", stdout=out)
    assert out.getvalue() == "Re-encrypted the environment of 1 functions.\n"
    settings.ELBIA_SECRETS_KEY = [new]  # the old key dropped: everything still reads
    assert Function.objects.get(pk=function.pk).environment == {"API_KEY": SECRET}
    settings.ELBIA_SECRETS_KEY = [old]
    with pytest.raises(UndecryptableSecret, match="ELBIA_SECRETS_KEY lacks the key") as caught:
        Function.objects.get(pk=function.pk)
    assert SECRET not in str(caught.value)


def test_the_data_migration_encrypts_existing_rows_and_its_reverse_decrypts(account):
    migration = MigrationLoader(connection).get_migration("functions", "0004_encrypt_environment")
    before = MigrationLoader(connection).project_state(("functions", "0003_lifecycle_and_indexes")).apps
    function = FunctionFactory(account=account)
    empty = FunctionFactory(account=account)
    write_raw_environment(function, {"API_KEY": SECRET, "LOG_LEVEL": "info"})

    encrypt, decrypt_back = migration.operations[0].code, migration.operations[0].reverse_code
    encrypt(before, None)
    stored = raw_environment(function)
    assert list(stored) == ["API_KEY", "LOG_LEVEL"] and SECRET not in json.dumps(stored)
    assert Function.objects.get(pk=function.pk).environment == {"API_KEY": SECRET, "LOG_LEVEL": "info"}
    assert raw_environment(empty) == {}

    decrypt_back(before, None)
    assert raw_environment(function) == {"API_KEY": SECRET, "LOG_LEVEL": "info"}


class TestSetting:
    def test_a_list_of_keys(self):
        one, two = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        assert parse_fernet_keys(f" {one} , {two} ") == [one, two]

    @pytest.mark.parametrize("raw", [",", "not-a-key", "c2hvcnQ=", "é" * 44])
    def test_bad_keys_are_refused(self, raw):
        with pytest.raises(ValueError, match="Fernet key"):
            parse_fernet_keys(raw)

    def test_a_bad_key_stops_the_process_without_echoing_it(self):
        bad = "my-secret-but-not-a-fernet-key"
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='elbia.settings'; django.setup()",
            ],
            cwd=BASE_DIR,
            env=os.environ | {"ELBIA_SECRETS_KEY": bad},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode != 0
        assert "ImproperlyConfigured: Environment variable ELBIA_SECRETS_KEY is invalid" in result.stderr
        assert bad not in result.stderr
