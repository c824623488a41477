import time

import pytest


class _Clock:
    def __init__(self, machine):
        self.machine = machine
        self.start = time.time()
        machine.move_to(self.start, tick=False)

    def shift(self, seconds: float) -> None:
        self.machine.shift(seconds)

    def time(self) -> float:
        return time.time()


@pytest.fixture
def time_machine_now(time_machine):
    """A frozen clock that tests move forward with ``.shift(seconds)``."""
    return _Clock(time_machine)
