"""A simulated provider that writes down every step it finishes, for the tests that kill workers.

``ELBIA_PROVIDER=tests.faults.provider.CountingProvider`` in a worker's environment; each finished step
appends ``<step> <public id>`` to the file ``ELBIA_TEST_PROVIDER_LOG`` (one line, appended atomically,
so two worker processes never mix their lines). A step a killed worker was in the middle of is not
written down: it did not finish.
"""

import os

from elbia.providers.simulated import SimulatedProvider


class CountingProvider(SimulatedProvider):
    """The simulated provider, recording each step it finishes."""

    def provision(self, resource) -> None:
        super().provision(resource)
        self._record("provision", resource.public_id)

    def deprovision(self, resource) -> None:
        super().deprovision(resource)
        self._record("deprovision", resource.public_id)

    def deploy_function(self, function) -> None:
        super().deploy_function(function)
        self._record("deploy", function.public_id)

    @staticmethod
    def _record(step: str, public_id: str) -> None:
        line = f"{step} {public_id}\n".encode()
        descriptor = os.open(os.environ["ELBIA_TEST_PROVIDER_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
