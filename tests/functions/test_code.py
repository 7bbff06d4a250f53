"""Function code: archive checks, starter code, content-addressed storage (filesystem and S3), signed downloads."""

import base64
import hashlib
import shutil
import subprocess
import zipfile
from io import BytesIO

import boto3
import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import storages

from elbia.config import code_storage
from elbia.errors import Conflict
from functions import code, services, validators
from functions.code import CodeUnavailable, check_archive, code_read, code_store, decode_code_base64, extract_archive
from functions.links import function_code_url
from functions.models import Function, FunctionStatus
from functions.runtimes import RUNTIMES
from functions.starters import has_starter, starter_archive
from tests.functions.code_archives import NODE_CODE, PYTHON_CODE, zip_of
from tests.functions.factories import FunctionFactory


def problems(data: bytes, runtime: str = "Python 3.11", handler: str = "app.handler") -> list[str]:
    with pytest.raises(ValidationError) as caught:
        check_archive(data, runtime=runtime, handler=handler)
    return caught.value.messages


def one_problem(data: bytes, runtime: str = "Python 3.11", handler: str = "app.handler") -> str:
    found = problems(data, runtime, handler)
    assert len(found) == 1, found
    return found[0]


APP = {"app.py": "def handler(event, context):\n    return 1\n"}


class TestArchiveChecks:
    def test_a_good_archive_passes_and_is_measured(self):
        archive = check_archive(zip_of(APP | {"lib/util.py": "X = 1\n"}), runtime="Python 3.11", handler="app.handler")
        assert (archive.entries, archive.unzipped_size) == (2, len(APP["app.py"]) + 6)

    def test_empty_bytes(self):
        assert one_problem(b"") == "The code is empty: send a ZIP archive."

    def test_not_a_zip(self):
        assert one_problem(b"hello, world" * 10) == "The code is not a ZIP archive (or the archive is damaged)."

    def test_a_zip_without_entries(self):
        assert "The archive is empty" in one_problem(zip_of({}))

    def test_larger_than_50_mb_zipped(self):
        assert one_problem(b"\0" * (50 * 1024 * 1024 + 1)) == (
            "The archive is 52,428,801 bytes; at most 52,428,800 bytes (50 MB) zipped are allowed."
        )

    def test_too_many_entries(self):
        files = {f"f{n}.txt": "" for n in range(code.MAX_ENTRIES)} | APP
        assert (
            one_problem(zip_of(files)) == f"The archive has {code.MAX_ENTRIES + 1} entries; at most 10000 are allowed."
        )

    def test_larger_than_250_mb_unzipped(self):
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("app.py", APP["app.py"])
            with archive.open("zeros.bin", "w", force_zip64=True) as sink:
                chunk = b"\0" * (1024 * 1024)
                for _ in range(251):
                    sink.write(chunk)
        message = one_problem(buffer.getvalue())
        assert message == (
            f"The archive unpacks to {251 * 1024 * 1024 + len(APP['app.py']):,} bytes; "
            "at most 262,144,000 bytes (250 MB) unzipped are allowed."
        )

    def test_encrypted_entries(self):
        data = bytearray(zip_of(APP))
        # Set the "encrypted" flag in the local and the central header, as a password-protected ZIP has it.
        for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = data.index(signature) + flag_offset
            data[at] |= 0x1
        assert one_problem(bytes(data)) == "The archive has encrypted entries, which cannot be run: 'app.py'."

    def test_a_damaged_entry(self):
        buffer = BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr("app.py", APP["app.py"])
        data = buffer.getvalue().replace(b"return 1", b"return 2")
        assert one_problem(data) == "The archive is damaged: the checksum of 'app.py' does not match."

    @pytest.mark.parametrize(
        "name", ["/etc/cron.d/evil", "../outside.py", "lib/../../outside.py", "C:/win.py", "a\\b.py"]
    )
    def test_paths_leaving_the_folder(self, name):
        assert one_problem(zip_of(APP | {name: "x"})) == (
            f"Entries must be relative paths inside the archive (no leading '/', drive letter, '\\' or '..'): {name!r}."
        )

    def test_many_bad_paths_are_summarised(self):
        message = one_problem(zip_of(APP | {f"../{n}.py": "x" for n in range(7)}))
        assert message.endswith("'../4.py' and 2 more.")

    @pytest.mark.parametrize(
        "links",
        [
            {"passwd": "/etc/passwd"},
            {"up": "../secret"},
            {"lib/up": "../../secret"},
            # Lexically inside, really outside: sub/s is the root, so sub/s/.. is its parent.
            {"sub/s": "..", "t": "sub/s/.."},
            {"loop": "loop"},
        ],
    )
    def test_symbolic_links_leading_outside(self, links):
        message = one_problem(zip_of(APP | {"sub/x.py": ""}, links=links))
        assert message.startswith("Symbolic links must point inside the archive: ")

    def test_symbolic_links_inside_are_kept(self, tmp_path):
        data = zip_of(APP | {"lib/real.py": "VALUE = 7\n"}, links={"lib/alias.py": "real.py", "shortcut": "lib"})
        check_archive(data, runtime="Python 3.11", handler="app.handler")
        extract_archive(data, tmp_path / "code")
        assert (tmp_path / "code/lib/alias.py").read_text() == "VALUE = 7\n"
        assert (tmp_path / "code/lib/alias.py").is_symlink() and (tmp_path / "code/shortcut").is_symlink()

    def test_entries_inside_a_linked_folder(self):
        message = one_problem(zip_of(APP | {"shortcut/x.py": "x"}, links={"shortcut": "lib"}))
        assert message == "Entries must not sit inside a symbolically linked folder: 'shortcut/x.py'."

    def test_duplicate_paths(self):
        buffer = BytesIO()
        with pytest.warns(UserWarning), zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("app.py", APP["app.py"])
            archive.writestr("app.py", "def handler(e, c): return 2\n")
        assert one_problem(buffer.getvalue()) == "The archive holds the same path more than once: 'app.py'."

    def test_problems_are_reported_together(self):
        assert len(problems(zip_of({"../x.py": "x"}))) == 2  # the path, and the missing handler file

    @pytest.mark.parametrize(
        ("runtime", "handler", "message"),
        [
            (
                "Node.js 20",
                "index.handler",
                "The archive has no index.js or index.mjs or index.cjs: the handler "
                "'index.handler' of a Node.js 20 function is there.",
            ),
            (
                "Node.js 20",
                "src/api.main",
                "The archive has no src/api.js or src/api.mjs or src/api.cjs: the "
                "handler 'src/api.main' of a Node.js 20 function is there.",
            ),
            (
                "Python 3.11",
                "app.handler",
                "The archive has no app.py or app/__init__.py: the handler "
                "'app.handler' of a Python 3.11 function is there.",
            ),
            (
                "Python 3.12",
                "pkg.mod.run",
                "The archive has no pkg/mod.py or pkg/mod/__init__.py: the handler "
                "'pkg.mod.run' of a Python 3.12 function is there.",
            ),
            (
                "Ruby 3.3",
                "function.handler",
                "The archive has no function.rb: the handler 'function.handler' of a Ruby 3.3 function is there.",
            ),
            (
                "Java 21",
                "example.Handler::handleRequest",
                "The archive has no example/Handler.class (or jars in "
                "lib/): the handler 'example.Handler::handleRequest' of a Java 21 function is there.",
            ),
            (
                ".NET 8",
                "HelloWorld::HelloWorld.Function::FunctionHandler",
                "The archive has no HelloWorld.dll: "
                "the handler 'HelloWorld::HelloWorld.Function::FunctionHandler' of a .NET 8 function is there.",
            ),
            (
                "Go 1.x",
                "bootstrap",
                "The archive has no bootstrap: the handler 'bootstrap' of a Go 1.x function is there.",
            ),
        ],
    )
    def test_the_handlers_file_must_be_there(self, runtime, handler, message):
        assert one_problem(zip_of({"README.md": "no code"}), runtime, handler) == message

    @pytest.mark.parametrize(
        ("runtime", "handler", "path"),
        [
            ("Node.js 20", "index.handler", "index.js"),
            ("Node.js 20", "index.handler", "index.mjs"),
            ("Node.js 22", "index.handler", "index.cjs"),
            ("Node.js 20", "src/api.main", "src/api.js"),
            ("Python 3.11", "app.handler", "app.py"),
            ("Python 3.11", "pkg.mod.run", "pkg/mod.py"),
            ("Python 3.13", "pkg.run", "pkg/__init__.py"),
            ("Python 3.11", "src/app.handler", "src/app.py"),
            ("Ruby 3.3", "lib/app.handler", "lib/app.rb"),
            ("Java 21", "example.Handler::handleRequest", "example/Handler.class"),
            ("Java 21", "example.Handler::handleRequest", "lib/app.jar"),
            (".NET 8", "HelloWorld::HelloWorld.Function::FunctionHandler", "HelloWorld.dll"),
            ("Go 1.x", "bootstrap", "bootstrap"),
        ],
    )
    def test_the_handlers_file_found(self, runtime, handler, path):
        check_archive(zip_of({path: "..."}), runtime=runtime, handler=handler)

    def test_a_folder_named_like_the_handler_file_is_not_it(self):
        assert "no app.py" in one_problem(zip_of({"app.py/x": "x"}))


class TestBase64:
    def test_decodes_standard_base64(self):
        assert decode_code_base64(base64.b64encode(NODE_CODE).decode()) == NODE_CODE

    @pytest.mark.parametrize("value", ["not base64!", "abc", "é"])
    def test_refuses_what_is_not_base64(self, value):
        with pytest.raises(ValidationError, match="not valid base64"):
            decode_code_base64(value)

    @pytest.mark.parametrize("value", [None, 12, ["UEsDBA=="]])
    def test_refuses_what_is_not_a_string(self, value):
        with pytest.raises(ValidationError, match="must be a base64 string"):
            decode_code_base64(value)

    def test_refuses_more_than_50_mb_before_decoding(self):
        with pytest.raises(ValidationError, match=r"larger than 52,428,800 bytes \(50 MB\) zipped"):
            decode_code_base64("A" * (70 * 1024 * 1024))


class TestStarters:
    @pytest.mark.parametrize("runtime", [name for name in RUNTIMES if has_starter(name)])
    def test_every_starter_passes_the_checks_and_is_reproducible(self, runtime):
        handler = RUNTIMES[runtime].handler_example
        first, second = starter_archive(runtime, handler), starter_archive(runtime, handler)
        assert first == second
        check_archive(first, runtime=runtime, handler=handler)

    def test_the_starters_bytes_do_not_change(self):
        # The starter's hash is part of every function created without code: a change here is a new release.
        assert hashlib.sha256(starter_archive("Node.js 20", "index.handler")).hexdigest() == NODE_STARTER_SHA256
        assert hashlib.sha256(starter_archive("Python 3.11", "app.handler")).hexdigest() == PYTHON_STARTER_SHA256

    def test_the_starter_follows_the_handler(self):
        with zipfile.ZipFile(BytesIO(starter_archive("Python 3.11", "pkg.mod.run"))) as archive:
            assert archive.namelist() == ["pkg/mod.py"]
            assert "def run(event, context):" in archive.read("pkg/mod.py").decode()
        with zipfile.ZipFile(BytesIO(starter_archive("Node.js 20", "src/api.main"))) as archive:
            assert archive.namelist() == ["src/api.mjs"]
            assert "export const main = async" in archive.read("src/api.mjs").decode()

    @pytest.mark.parametrize("runtime", [".NET 8", "Go 1.x"])
    def test_dotnet_and_go_have_none(self, runtime):
        assert starter_archive(runtime, RUNTIMES[runtime].handler_example) is None

    @pytest.mark.skipif(not (shutil.which("javac") and shutil.which("java")), reason="needs a JDK")
    def test_the_java_starter_runs_on_a_jvm(self, tmp_path):
        """The written class passes the JVM's verifier and answers through an AWS-like Context."""
        (tmp_path / "stub/com/amazonaws/services/lambda/runtime").mkdir(parents=True)
        (tmp_path / "stub/com/amazonaws/services/lambda/runtime/Context.java").write_text(JAVA_CONTEXT)
        (tmp_path / "Harness.java").write_text(JAVA_HARNESS)
        sources = [
            str(tmp_path / "stub/com/amazonaws/services/lambda/runtime/Context.java"),
            str(tmp_path / "Harness.java"),
        ]
        subprocess.run(["javac", "-d", str(tmp_path / "classes"), *sources], check=True)
        with zipfile.ZipFile(BytesIO(starter_archive("Java 21", "com.acme.Api::handle"))) as archive:
            assert archive.namelist() == ["com/acme/Api.class"]
            archive.extractall(tmp_path / "code")
        done = subprocess.run(
            ["java", "-Xverify:all", "-cp", str(tmp_path / "classes"), "Harness", str(tmp_path / "code"),
             "com.acme.Api", "handle", "orders-api"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert done.stdout.strip() == "{message=Hello from orders-api, event=the-event}"


JAVA_CONTEXT = (
    "package com.amazonaws.services.lambda.runtime;\npublic interface Context { String getFunctionName(); }\n"
)
JAVA_HARNESS = """
import java.io.File;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.net.URL;
import java.net.URLClassLoader;

public class Harness {
    public static void main(String[] args) throws Exception {
        URLClassLoader loader = new URLClassLoader(new URL[] {new File(args[0]).toURI().toURL()});
        Class<?> contextType = Class.forName("com.amazonaws.services.lambda.runtime.Context");
        Class<?> handlerType = loader.loadClass(args[1]);
        Object handler = handlerType.getConstructor().newInstance();
        Object context = Proxy.newProxyInstance(loader, new Class<?>[] {contextType}, (p, m, a) -> args[3]);
        Method method = handlerType.getMethod(args[2], Object.class, contextType);
        System.out.println(method.invoke(handler, "the-event", context));
    }
}
"""


NODE_STARTER_SHA256 = "e1405c12838cd30b3690ac0f0cacb5486d1e819f80c7b83a36d1b225157ee756"
PYTHON_STARTER_SHA256 = "833a53e7482d34c5c0ba71cfac9f07479c93c89ae648627bc641377097e337c4"


class TestFilesystemStorage:
    def test_the_same_archive_is_stored_once(self, code_dir):
        first = code_store(NODE_CODE)
        assert code_store(NODE_CODE) == first == (hashlib.sha256(NODE_CODE).hexdigest(), len(NODE_CODE))
        stored = [path for path in code_dir.rglob("*") if path.is_file()]
        assert [path.relative_to(code_dir).as_posix() for path in stored] == [f"{first[0][:2]}/{first[0]}.zip"]
        assert code_read(first[0]) == NODE_CODE

    def test_two_archives_two_objects(self, code_dir):
        assert code_store(NODE_CODE)[0] != code_store(PYTHON_CODE)[0]
        assert len([path for path in code_dir.rglob("*.zip")]) == 2

    def test_a_missing_object(self, code_dir):
        with pytest.raises(CodeUnavailable, match="missing"):
            code_read("0" * 64)

    def test_an_altered_object_is_not_served(self, code_dir):
        sha256, _ = code_store(NODE_CODE)
        (code_dir / sha256[:2] / f"{sha256}.zip").write_bytes(PYTHON_CODE)
        with pytest.raises(CodeUnavailable, match="does not match its hash"):
            code_read(sha256)

    @pytest.mark.parametrize("key", ["../../etc/passwd", "ABC", "0" * 63])
    def test_only_hashes_are_read(self, code_dir, key):
        with pytest.raises(CodeUnavailable, match="is not a sha256"):
            code_read(key)


@pytest.fixture
def code_bucket(settings, aws_endpoint):
    """The code storage on a new bucket of the AWS emulator's S3; yields a boto3 client and the bucket's name."""
    client = boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1")
    bucket = f"elbia-code-{hashlib.sha256(str(id(settings)).encode()).hexdigest()[:12]}"
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "code": code_storage(bucket=bucket, directory="", endpoint_url=aws_endpoint),
    }
    return client, bucket


class TestS3Storage:
    def test_the_same_archive_is_stored_once_in_the_bucket(self, code_bucket):
        client, bucket = code_bucket
        sha256, size = code_store(NODE_CODE)
        assert code_store(NODE_CODE) == (sha256, size)
        listed = client.list_objects_v2(Bucket=bucket)["Contents"]
        assert [(item["Key"], item["Size"]) for item in listed] == [(f"{sha256[:2]}/{sha256}.zip", len(NODE_CODE))]
        assert client.get_object(Bucket=bucket, Key=listed[0]["Key"])["Body"].read() == NODE_CODE
        assert code_read(sha256) == NODE_CODE

    def test_a_missing_object(self, code_bucket):
        with pytest.raises(CodeUnavailable, match="missing"):
            code_read("0" * 64)

    def test_an_altered_object_is_not_served(self, code_bucket):
        client, bucket = code_bucket
        sha256, _ = code_store(NODE_CODE)
        client.put_object(Bucket=bucket, Key=f"{sha256[:2]}/{sha256}.zip", Body=PYTHON_CODE)
        with pytest.raises(CodeUnavailable, match="does not match"):
            code_read(sha256)

    def test_the_storage_is_django_storages_s3(self, code_bucket):
        assert type(storages["code"]).__module__ == "storages.backends.s3"


NEW = {"name": "hello", "runtime": "Python 3.11", "handler": "app.handler"}


@pytest.mark.django_db
class TestServices:
    def test_created_without_code_a_function_gets_its_starter(self, account, code_dir):
        function = services.function_create(account=account, **NEW)
        starter = starter_archive("Python 3.11", "app.handler")
        assert (function.code_sha256, function.code_size) == (hashlib.sha256(starter).hexdigest(), len(starter))
        assert code_read(function.code_sha256) == starter

    def test_a_runtime_named_by_its_identifier_gets_its_starter(self, account, code_dir):
        function = services.function_create(account=account, name="by-id", runtime="python3.11", handler="app.handler")
        assert function.runtime == "Python 3.11"
        assert code_read(function.code_sha256) == starter_archive("Python 3.11", "app.handler")

    def test_created_with_code(self, account, code_dir):
        function = services.function_create(account=account, **NEW, code=PYTHON_CODE)
        assert function.code_sha256 == hashlib.sha256(PYTHON_CODE).hexdigest()
        assert code_read(Function.objects.get().code_sha256) == PYTHON_CODE

    def test_a_dotnet_function_without_code_has_none(self, account, code_dir):
        function = services.function_create(
            account=account, name="d", runtime=".NET 8", handler="HelloWorld::HelloWorld.Function::FunctionHandler"
        )
        assert (function.code_sha256, function.code_size) == (None, None)

    def test_bad_code_is_reported_with_the_other_problems_and_nothing_is_written(self, account, code_dir):
        with pytest.raises(ValidationError) as caught:
            services.function_create(account=account, **NEW | {"name": "Hello"}, code=NODE_CODE)
        assert caught.value.message_dict == {
            "name": [validators.NAME_MESSAGE],
            "code": [
                "The archive has no app.py or app/__init__.py: the handler 'app.handler' of a Python 3.11 "
                "function is there."
            ],
        }
        assert not Function.objects.exists() and not list(code_dir.rglob("*.zip"))

    def test_code_is_not_checked_against_a_bad_handler(self, account, code_dir):
        with pytest.raises(ValidationError) as caught:
            services.function_create(account=account, **NEW | {"handler": "no handler"}, code=PYTHON_CODE)
        assert set(caught.value.message_dict) == {"handler"}

    def test_new_code_redeploys(self, account, code_dir, django_capture_on_commit_callbacks):
        function = FunctionFactory(account=account, runtime="Python 3.11", handler="app.handler")
        with django_capture_on_commit_callbacks() as queued:
            updated = services.function_update_code(function=function, archive=PYTHON_CODE)
        function.refresh_from_db()
        assert (function.status, function.code_sha256, function.code_size) == (
            FunctionStatus.DEPLOYING,
            hashlib.sha256(PYTHON_CODE).hexdigest(),
            len(PYTHON_CODE),
        )
        assert updated.code_sha256 == function.code_sha256
        assert [message.task_name for message in queued] == ["functions.tasks.deploy_function"]

    def test_the_same_code_again_changes_nothing(self, account, code_dir, django_capture_on_commit_callbacks):
        function = FunctionFactory(account=account, runtime="Python 3.11", handler="app.handler")
        services.function_update_code(function=function, archive=PYTHON_CODE)
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.ACTIVE)
        with django_capture_on_commit_callbacks() as queued:
            services.function_update_code(function=function, archive=PYTHON_CODE)
        assert Function.objects.get(pk=function.pk).status == FunctionStatus.ACTIVE and not queued

    def test_a_bad_archive_touches_nothing_deployed(self, account, code_dir, django_capture_on_commit_callbacks):
        function = services.function_create(account=account, **NEW, code=PYTHON_CODE)
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.ACTIVE)
        with django_capture_on_commit_callbacks() as queued, pytest.raises(ValidationError) as caught:
            services.function_update_code(function=function, archive=zip_of({"../app.py": "x"}))
        assert set(caught.value.message_dict) == {"code"} and len(caught.value.message_dict["code"]) == 2
        function.refresh_from_db()
        assert (function.status, function.code_sha256) == (
            FunctionStatus.ACTIVE,
            hashlib.sha256(PYTHON_CODE).hexdigest(),
        )
        assert not queued and len(list(code_dir.rglob("*.zip"))) == 1

    @pytest.mark.parametrize("status", ["created", "deploying", "deprecated", "deleting", "deleted"])
    def test_code_changes_only_when_active_or_failed(self, account, code_dir, status):
        function = FunctionFactory(account=account, runtime="Python 3.11", handler="app.handler", status=status)
        with pytest.raises(Conflict, match=f"is {status}|still {status}|deprecated"):
            services.function_update_code(function=function, archive=PYTHON_CODE)

    def test_a_new_handler_must_be_in_the_code(self, account, code_dir):
        function = services.function_create(account=account, **NEW, code=PYTHON_CODE)
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.ACTIVE)
        with pytest.raises(ValidationError) as caught:
            services.function_update(function=function, handler="other.handler")
        assert caught.value.message_dict == {
            "handler": [
                "The archive has no other.py or other/__init__.py: the handler 'other.handler' of a "
                "Python 3.11 function is there. Upload code that has it first."
            ]
        }
        services.function_update(function=function, handler="app.run")  # same file, another function: fine

    def test_existing_functions_get_their_starter_in_the_migration(self, account, code_dir):
        from importlib import import_module

        from django.apps import apps

        node = FunctionFactory(account=account, runtime="Node.js 20", handler="index.handler")
        python = FunctionFactory(account=account, runtime="Python 3.11", handler="app.handler")
        java = FunctionFactory(account=account, runtime="Java 21", handler="a.B::c")
        go = FunctionFactory(account=account, runtime="Go 1.x", handler="bootstrap")
        import_module("functions.migrations.0006_code").give_starter_code(apps, None)
        for function in (node, python, java, go):
            function.refresh_from_db()
        assert code_read(node.code_sha256) == starter_archive("Node.js 20", "index.handler")
        assert code_read(python.code_sha256) == starter_archive("Python 3.11", "app.handler")
        assert code_read(java.code_sha256) == starter_archive("Java 21", "a.B::c")
        assert go.code_sha256 is None


@pytest.mark.django_db
class TestDownloadLinks:
    @pytest.fixture
    def function(self, account, code_dir):
        return services.function_create(account=account, **NEW, code=PYTHON_CODE)

    def test_the_link_downloads_the_archive_without_a_token(self, client, function):
        url = function_code_url(function)
        assert url.startswith("http://127.0.0.1:8000/functions/code/")
        response = client.get(url.removeprefix("http://127.0.0.1:8000"))
        assert response.status_code == 200
        assert response["Content-Type"] == "application/zip"
        assert response["Content-Disposition"] == 'attachment; filename="hello.zip"'
        assert b"".join(response.streaming_content) == PYTHON_CODE

    def test_an_altered_link_is_a_404(self, client, function):
        path = function_code_url(function).removeprefix("http://127.0.0.1:8000")
        assert client.get(path[:-2] + "xx").status_code == 404

    def test_an_expired_link_is_a_410(self, client, function, settings):
        path = function_code_url(function).removeprefix("http://127.0.0.1:8000")
        settings.ELBIA_CODE_LINK_SECONDS = -1
        response = client.get(path)
        assert response.status_code == 410 and b"expired" in response.content

    def test_a_deleted_functions_link_is_a_404(self, client, function):
        path = function_code_url(function).removeprefix("http://127.0.0.1:8000")
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.DELETED)
        assert client.get(path).status_code == 404

    def test_an_invoice_link_does_not_open_code(self, client, function):
        from billing.links import invoice_pdf_link_path

        token = invoice_pdf_link_path(f"{function.public_id}:{function.code_sha256}").rsplit("/", 1)[1]
        assert client.get(f"/functions/code/{token}").status_code == 404

    def test_a_function_without_code_has_no_link(self, account):
        assert function_code_url(FunctionFactory(account=account, runtime="Go 1.x", handler="bootstrap")) is None
