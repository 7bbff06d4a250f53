"""Starter code: the small handler a function gets when it is created without code, so it works at once.

``starter_archive(runtime, handler)`` builds a ZIP holding one file, the handler's, which answers
``{"message": "Hello from <function name>", "event": <the event>}`` (the name comes from the context, so
every function with the same runtime and handler shares one archive). The archive is built
reproducibly: entries stored uncompressed, with a fixed timestamp and mode, so its bytes and sha256
never change. Java's starter is a class file written here (``java_class``), as no compiler is needed
to run Elbia; .NET and Go have no starter: their functions start without code until an archive is
uploaded (see docs/functions-code.md).
"""

import struct
import zipfile
from io import BytesIO

from functions.code import handler_files
from functions.runtimes import RUNTIMES

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a ZIP can say

_HEADER = "Elbia starter handler: replace it with your own code (upload a ZIP archive to the function)."

_SOURCES = {
    "javascript": (
        "// {header}\n"
        "export const {function} = async (event, context) => {{\n"
        "  return {{ message: `Hello from ${{context.functionName}}`, event }};\n"
        "}};\n"
    ),
    "python": (
        '"""{header}"""\n'
        "\n\n"
        "def {function}(event, context):\n"
        '    return {{"message": f"Hello from {{context.function_name}}", "event": event}}\n'
    ),
    "ruby": (
        "# {header}\n"
        "def {function}(event:, context:)\n"
        '  {{ message: "Hello from #{{context.function_name}}", event: event }}\n'
        "end\n"
    ),
}
# The file each language's starter is written to, among the handler's candidate files.
_FILE_CHOICE = {"javascript": 1, "python": 0, "ruby": 0, "java": 0}  # index.mjs (ES module, as AWS's), app.py
_CONTEXT = "com/amazonaws/services/lambda/runtime/Context"


class _ConstantPool:
    """A class file's constant pool, each constant added once."""

    def __init__(self):
        self.entries: list[bytes] = []
        self.index: dict[bytes, int] = {}

    def _add(self, entry: bytes) -> int:
        if entry not in self.index:
            self.entries.append(entry)
            self.index[entry] = len(self.entries)
        return self.index[entry]

    def utf8(self, text: str) -> int:
        data = text.encode()
        return self._add(struct.pack(">BH", 1, len(data)) + data)

    def cls(self, name: str) -> int:
        return self._add(struct.pack(">BH", 7, self.utf8(name)))

    def string(self, text: str) -> int:
        return self._add(struct.pack(">BH", 8, self.utf8(text)))

    def member(self, tag: int, owner: str, name: str, descriptor: str) -> int:
        name_and_type = self._add(struct.pack(">BHH", 12, self.utf8(name), self.utf8(descriptor)))
        return self._add(struct.pack(">BHH", tag, self.cls(owner), name_and_type))

    def method(self, owner: str, name: str, descriptor: str) -> int:
        return self.member(10, owner, name, descriptor)

    def interface_method(self, owner: str, name: str, descriptor: str) -> int:
        return self.member(11, owner, name, descriptor)

    def __bytes__(self) -> bytes:
        return struct.pack(">H", len(self.entries) + 1) + b"".join(self.entries)


def java_class(class_name: str, method: str) -> bytes:
    """A class ``class_name`` (Java 17 format) whose ``method(Object event, Context context)`` gives the answer.

    The answer is a ``HashMap`` of ``message`` ("Hello from " + ``context.getFunctionName()``) and
    ``event``, which AWS Lambda's Java runtime serializes as JSON. No branches, so no stack map frames.
    """
    internal = class_name.replace(".", "/")
    pool = _ConstantPool()
    this, parent, code = pool.cls(internal), pool.cls("java/lang/Object"), pool.utf8("Code")
    put = pool.method("java/util/HashMap", "put", "(Ljava/lang/Object;Ljava/lang/Object;)Ljava/lang/Object;")
    constructor = bytes([0x2A, 0xB7]) + struct.pack(">H", pool.method("java/lang/Object", "<init>", "()V")) + b"\xb1"
    handler = b"".join(
        [
            b"\xbb" + struct.pack(">H", pool.cls("java/util/HashMap")),  # new HashMap
            b"\x59\xb7" + struct.pack(">H", pool.method("java/util/HashMap", "<init>", "()V")),  # dup, <init>
            b"\x4e\x2d",  # astore_3, aload_3
            b"\x13" + struct.pack(">H", pool.string("message")),  # ldc_w "message"
            b"\x13" + struct.pack(">H", pool.string("Hello from ")),
            b"\x2c\xb9" + struct.pack(">H", pool.interface_method(_CONTEXT, "getFunctionName", "()Ljava/lang/String;")),
            b"\x01\x00",  # invokeinterface's count and zero
            b"\xb6"
            + struct.pack(">H", pool.method("java/lang/String", "concat", "(Ljava/lang/String;)Ljava/lang/String;")),
            b"\xb6" + struct.pack(">H", put) + b"\x57",  # map.put(...), pop
            b"\x2d\x13" + struct.pack(">H", pool.string("event")) + b"\x2b",  # aload_3, "event", aload_1
            b"\xb6" + struct.pack(">H", put) + b"\x57\x2d\xb0",  # map.put(...), pop, aload_3, areturn
        ]
    )
    methods = [
        ("<init>", "()V", constructor, 1, 1),
        (method, f"(Ljava/lang/Object;L{_CONTEXT};)Ljava/lang/Object;", handler, 4, 4),
    ]
    body = b""
    for name, descriptor, instructions, max_stack, max_locals in methods:
        attribute = struct.pack(">HHI", max_stack, max_locals, len(instructions)) + instructions + b"\0\0\0\0"
        body += struct.pack(">HHHH", 0x0001, pool.utf8(name), pool.utf8(descriptor), 1)
        body += struct.pack(">HI", code, len(attribute)) + attribute
    header = struct.pack(">IHH", 0xCAFEBABE, 0, 61)  # the Java 17 format: Java 21 runs it, older JVMs check it
    return header + bytes(pool) + struct.pack(">HHHHHH", 0x0021, this, parent, 0, 0, len(methods)) + body + b"\0\0"


def has_starter(runtime: str) -> bool:
    """Whether functions on ``runtime`` get starter code when created without any."""
    return RUNTIMES[runtime].language in _FILE_CHOICE


def starter_archive(runtime: str, handler: str) -> bytes | None:
    """The starter ZIP for a valid ``handler`` of ``runtime`` (the same bytes every time); ``None`` without one."""
    language = RUNTIMES[runtime].language
    if language not in _FILE_CHOICE:
        return None
    path = handler_files(runtime, handler)[_FILE_CHOICE[language]]
    if language == "java":
        class_name, method = handler.split("::")
        source = java_class(class_name, method)
    else:
        source = _SOURCES[language].format(header=_HEADER, function=handler.rsplit(".", 1)[1])
    info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
    info.create_system = 3  # Unix, so the mode below is read
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_STORED
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, source)
    return buffer.getvalue()
