"""The runtime catalog: each runtime's handler format."""

import re

import pytest

from functions.runtimes import RUNTIMES

VALID = {
    "Node.js 20": ["index.handler", "src/api/users.main", "app-v2.handler", "index.$handler"],
    "Python 3.12": ["lambda_function.lambda_handler", "app.handlers.main", "src/app.handler"],
    "Ruby 3.3": ["function.handler", "lib/app.handler"],
    "Java 21": ["example.Handler::handleRequest", "Handler::handleRequest", "com.acme.auth.Login::handle"],
    "Go 1.x": ["bootstrap", "main", "my-handler"],
    ".NET 8": ["HelloWorld::HelloWorld.Function::FunctionHandler", "My.Assembly::Ns.Inner.Class::Run"],
}
INVALID = {
    "Node.js 20": ["index", ".handler", "index.", "index.handler()", "../index.handler", "index.handler\n", "a b.c"],
    "Python 3.12": ["app", "app.", "1app.handler", "app.1handler", "app::handler"],
    "Ruby 3.3": ["function", "function.", "Function::Handler"],
    "Java 21": ["example.Handler", "Handler::", "::handle", "example.Handler::handle::x", "index.handler"],
    "Go 1.x": ["", "bin/bootstrap", "-x", "boot strap"],
    ".NET 8": ["Function::Handler", "A::B.C", "A::B.C::", "index.handler"],
}


@pytest.mark.parametrize(("runtime", "handler"), [(name, h) for name, hs in VALID.items() for h in hs])
def test_valid_handlers(runtime, handler):
    assert RUNTIMES[runtime].handler_is_valid(handler)


@pytest.mark.parametrize(("runtime", "handler"), [(name, h) for name, hs in INVALID.items() for h in hs])
def test_invalid_handlers(runtime, handler):
    assert not RUNTIMES[runtime].handler_is_valid(handler)


def test_handlers_are_at_most_128_characters():
    assert RUNTIMES["Go 1.x"].handler_is_valid("b" * 128)
    assert not RUNTIMES["Go 1.x"].handler_is_valid("b" * 129)


@pytest.mark.parametrize("runtime", list(RUNTIMES.values()), ids=list(RUNTIMES))
def test_examples_match_their_own_published_pattern(runtime):
    assert runtime.handler_is_valid(runtime.handler_example)
    assert re.search(runtime.handler_pattern, runtime.handler_example)  # anchored: usable as a JSON Schema pattern
    assert not re.search(runtime.handler_pattern, f"x {runtime.handler_example}")
