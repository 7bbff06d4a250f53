"""Starter code: the small handler a function gets when it is created without code, so it works at once.

``starter_archive(runtime, handler)`` builds a ZIP holding one file, the handler's, which answers
``{"message": "Hello from <function name>", "event": <the event>}`` (the name comes from the context, so
every function with the same runtime and handler shares one archive). The archive is built
reproducibly: entries stored uncompressed, with a fixed timestamp and mode, so its bytes and sha256
never change. Runtimes whose handlers are compiled (Java, .NET, Go) have no starter: their functions
start without code until an archive is uploaded (see docs/functions-code.md).
"""

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
_FILE_CHOICE = {"javascript": 1, "python": 0, "ruby": 0}  # index.mjs (ES module, as AWS's own starter), app.py


def has_starter(runtime: str) -> bool:
    """Whether functions on ``runtime`` get starter code when created without any."""
    return RUNTIMES[runtime].language in _SOURCES


def starter_archive(runtime: str, handler: str) -> bytes | None:
    """The starter ZIP for a valid ``handler`` of ``runtime`` (the same bytes every time); ``None`` without one."""
    language = RUNTIMES[runtime].language
    if language not in _SOURCES:
        return None
    path = handler_files(runtime, handler)[_FILE_CHOICE[language]]
    function = handler.rsplit(".", 1)[1]
    source = _SOURCES[language].format(header=_HEADER, function=function)
    info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
    info.create_system = 3  # Unix, so the mode below is read
    info.external_attr = 0o100644 << 16
    info.compress_type = zipfile.ZIP_STORED
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, source)
    return buffer.getvalue()
