"""The runtime catalog: the execution environments functions run in, with the handler format each expects.

Names are what the API speaks (``"Node.js 20"``, as the public documentation shows); ``identifier`` is
the AWS Lambda runtime identifier behind it. A deprecated runtime keeps running the functions already
on it, but no new function can be created on it (as AWS does once a runtime's support ends).
"""

import re
from dataclasses import dataclass

MAX_HANDLER_LENGTH = 128  # as AWS Lambda

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_JS_IDENT = r"[A-Za-z_$][A-Za-z0-9_$]*"
_PATH = r"(?:[A-Za-z0-9_-]+/)*"  # optional folders before the file

# Node.js: file.function, the file (without .js/.mjs) possibly in folders: index.handler, src/api.main
NODE_HANDLER = rf"^{_PATH}[A-Za-z0-9_-]+\.{_JS_IDENT}$"
# Python: module.function, the module possibly dotted or in folders: lambda_function.lambda_handler
PYTHON_HANDLER = rf"^{_PATH}{_IDENT}(?:\.{_IDENT})*\.{_IDENT}$"
# Ruby: file.function: function.handler, lib/app.handler
RUBY_HANDLER = rf"^{_PATH}[A-Za-z0-9_-]+\.{_IDENT}$"
# Java: package.Class::method: example.Handler::handleRequest
JAVA_HANDLER = rf"^(?:{_JS_IDENT}\.)*{_JS_IDENT}::{_JS_IDENT}$"
# Go: the executable's file name: bootstrap, main
GO_HANDLER = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
# .NET: Assembly::Namespace.Class::Method: HelloWorld::HelloWorld.Function::FunctionHandler
DOTNET_HANDLER = rf"^[A-Za-z0-9_][A-Za-z0-9_.-]*::{_IDENT}(?:\.{_IDENT})*::{_IDENT}$"


@dataclass(frozen=True)
class Runtime:
    """One entry of the runtime catalog (``GET /v1/runtimes``): what a function's ``runtime`` may name."""

    name: str
    identifier: str
    language: str
    handler_format: str
    handler_example: str
    handler_pattern: str  # a regular expression the whole handler must match (anchored, ECMAScript-compatible)
    deprecated: bool = False

    def handler_is_valid(self, handler: str) -> bool:
        return len(handler) <= MAX_HANDLER_LENGTH and re.fullmatch(self.handler_pattern, handler) is not None


RUNTIMES: dict[str, Runtime] = {
    runtime.name: runtime
    for runtime in (
        Runtime("Node.js 18", "nodejs18.x", "javascript", "file.function", "index.handler", NODE_HANDLER, True),
        Runtime("Node.js 20", "nodejs20.x", "javascript", "file.function", "index.handler", NODE_HANDLER),
        Runtime("Node.js 22", "nodejs22.x", "javascript", "file.function", "index.handler", NODE_HANDLER),
        Runtime(
            "Python 3.11", "python3.11", "python", "file.function", "lambda_function.lambda_handler", PYTHON_HANDLER
        ),
        Runtime(
            "Python 3.12", "python3.12", "python", "file.function", "lambda_function.lambda_handler", PYTHON_HANDLER
        ),
        Runtime(
            "Python 3.13", "python3.13", "python", "file.function", "lambda_function.lambda_handler", PYTHON_HANDLER
        ),
        Runtime("Java 21", "java21", "java", "package.Class::method", "example.Handler::handleRequest", JAVA_HANDLER),
        Runtime("Go 1.x", "go1.x", "go", "executable name", "bootstrap", GO_HANDLER, True),
        Runtime("Ruby 3.3", "ruby3.3", "ruby", "file.function", "function.handler", RUBY_HANDLER),
        Runtime(
            ".NET 8",
            "dotnet8",
            "csharp",
            "Assembly::Namespace.Class::Method",
            "HelloWorld::HelloWorld.Function::FunctionHandler",
            DOTNET_HANDLER,
        ),
    )
}

CURRENT_RUNTIMES = tuple(name for name, runtime in RUNTIMES.items() if not runtime.deprecated)
#: Every way a runtime may be named: its name (``Node.js 20``) or its AWS identifier (``nodejs20.x``).
RUNTIME_NAMES: dict[str, str] = {
    **{runtime.identifier: name for name, runtime in RUNTIMES.items()},
    **{name: name for name in RUNTIMES},
}


def runtime_name(value: str) -> str:
    """The catalog name of a runtime named by its name or its identifier; ``value`` itself when neither."""
    return RUNTIME_NAMES.get(value, value)
