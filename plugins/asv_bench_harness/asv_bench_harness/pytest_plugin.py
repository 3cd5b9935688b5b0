"""pytest markers that fail a test whose body adds more memory than its limit.

    @pytest.mark.limit_anon_memory("64 MiB")    # anonymous memory (heap, arrays)
    @pytest.mark.limit_file_memory("1 GiB")     # file-backed memory (mapped files)

The figure is the peak increment of the test function's own call (``asv_bench_harness.memory``:
sampled every 0.5 ms, the whole increment exact), fixtures excluded: what a fixture allocates
before the test is in the baseline, not in the figure. A limit is a size as the harness reads
one (``asv_bench_harness.units.parse_bytes``: '64 MiB', '1GB', 8388608). An exceeded limit fails
the test with the measured figure; the figures are also added to the test's
``user_properties`` (``anon_increment_bytes``, ``file_increment_bytes``: JUnit XML shows them).
Where the meter cannot measure (no Linux /proc), the test runs unchecked, with a warning.

Registered through the ``pytest11`` entry point of the ``asv_bench_harness`` distribution.
"""

from __future__ import annotations

import warnings

import pytest

from asv_bench_harness.memory import MeterUnavailableError, PeakMemory, PeakMeter
from asv_bench_harness.units import binary_bytes, parse_bytes

#: marker name -> (the PeakMemory field it limits, the figure in words)
MARKERS = {
    "limit_anon_memory": ("anon_increment", "anonymous"),
    "limit_file_memory": ("file_increment", "file-backed"),
}


def pytest_configure(config: pytest.Config) -> None:
    for name, (_, what) in MARKERS.items():
        config.addinivalue_line(
            "markers",
            f"{name}(limit): fail the test when its body's peak increment of {what} memory "
            "exceeds limit (a size: '64 MiB', '2GB' or bytes); fixtures are not counted")


def _limits(item: pytest.Item) -> dict[str, int]:
    """Marker name -> limit in bytes, for the markers on ``item`` (the closest one wins)."""
    limits = {}
    for name in MARKERS:
        marker = item.get_closest_marker(name)
        if marker is None:
            continue
        if len(marker.args) != 1 or marker.kwargs:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.{name} takes one limit, e.g. "
                f"@pytest.mark.{name}(\"64 MiB\"); got args={marker.args!r} "
                f"kwargs={marker.kwargs!r}")
        try:
            limits[name] = parse_bytes(marker.args[0])
        except ValueError as exc:
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.{name}: {exc}") from None
    return limits


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function):
    limits = _limits(pyfuncitem)
    if not limits:
        return (yield)
    try:
        measurement = PeakMeter().start()
    except MeterUnavailableError as exc:
        warnings.warn(pytest.PytestWarning(f"memory limits not checked: {exc}"), stacklevel=1)
        return (yield)
    try:
        result = yield
    except BaseException:
        measurement.cancel()  # the test failed already: no figure to judge
        raise
    peak = measurement.stop()
    for field, _ in MARKERS.values():
        pyfuncitem.user_properties.append((f"{field}_bytes", getattr(peak, field)))
    over = [_exceeded(name, limit, peak) for name, limit in limits.items()
            if getattr(peak, MARKERS[name][0]) > limit]
    if over:
        pytest.fail("\n".join(over), pytrace=False)
    return result


def _exceeded(name: str, limit: int, peak: PeakMemory) -> str:
    field, what = MARKERS[name]
    figure = getattr(peak, field)
    return (f"{name}: the test body's peak increment of {what} memory was "
            f"{binary_bytes(figure, 1)} ({figure} bytes), over its limit of "
            f"{binary_bytes(limit, 1)} ({limit} bytes); whole increment "
            f"{binary_bytes(peak.increment, 1)}, method {peak.method}")
