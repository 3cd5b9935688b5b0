"""Machine fingerprint, roofline probes and ``python -m harness machine``."""

from __future__ import annotations

import json

import pytest
from conftest import MiB

from harness.cli import main
from harness.measuring.meters import machine
from harness.measuring.meters.machine import DataDirError, Roofline, fingerprint, roofline


def test_fingerprint_names_hardware_versions_and_data_filesystem(tmp_path) -> None:
    fp = fingerprint(tmp_path / "not-made-yet")
    assert fp["logical_cores"] >= 1
    assert fp["ram_bytes"] > 1 << 30
    assert fp["data_dir"]["fstype"]  # found through the nearest existing ancestor
    assert fp["data_dir"]["free_bytes"] > 0
    assert fp["numpy"].count(".") >= 1
    assert fp["hdf5_default_chunk_cache_bytes"] >= MiB
    assert any(pool["user_api"] == "blas" for pool in fp["thread_pools"])
    json.dumps(fp)  # JSON-safe, as the CLI and result records need


@pytest.mark.slow
def test_roofline_measures_both_ceilings_and_cleans_up(tmp_path, monkeypatch) -> None:
    written = []  # the scratch files the probe wrote: an empty tmp_path proves nothing otherwise

    def recording(path, nbytes):
        written.append(path)
        return write_probe_file(path, nbytes)

    write_probe_file = machine._write_probe_file
    monkeypatch.setattr(machine, "_write_probe_file", recording)
    roof = roofline(tmp_path, memory_bytes=128 * MiB, disk_bytes=128 * MiB)
    assert [path.parent for path in written] == [tmp_path]
    assert isinstance(roof, Roofline)
    # Loose floors: the figures are noisy here; these catch a broken probe, not a slow machine.
    assert roof.memory_read_gbps > 1.0
    assert roof.disk_read_gbps > 0.05
    assert roof.disk_resident_before_read < 0.01
    assert roof.memory_read_gbps >= roof.memory_read_median_gbps
    assert list(tmp_path.iterdir()) == []  # the scratch file is gone


def test_data_dir_that_is_a_file_is_a_clear_error(tmp_path) -> None:
    a_file = tmp_path / "data.bin"
    a_file.write_bytes(b"x")
    with pytest.raises(DataDirError, match="not a directory.*writable directory"):
        roofline(a_file, memory_bytes=MiB, disk_bytes=MiB)


def test_data_dir_that_cannot_be_created_is_a_clear_error(tmp_path) -> None:
    a_file = tmp_path / "data.bin"
    a_file.write_bytes(b"x")
    with pytest.raises(DataDirError, match="cannot create the data directory"):
        roofline(a_file / "sub", memory_bytes=MiB, disk_bytes=MiB)


def test_tiny_probe_size_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="at least 1 MiB"):
        roofline(tmp_path, disk_bytes=1000)


def test_cli_json_reports_fingerprint_and_bandwidths(tmp_path, capsys) -> None:
    status = main(["machine", "--format", "json", "--data-dir", str(tmp_path),
                   "--disk-mib", "64", "--memory-mib", "64"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fingerprint"]["data_dir"]["path"] == str(tmp_path)
    assert report["roofline"]["memory_read_gbps"] > 1.0
    assert report["roofline"]["disk_read_gbps"] > 0.05
    rates = report["decode_rates"]
    assert {"gzip-1-shuffle", "blosc-lz4", "zstd"} <= set(rates) and "lzf" not in rates
    assert all(rate > 0 for rate in rates.values())


def test_cli_text_prints_memory_and_disk_lines(tmp_path, capsys) -> None:
    status = main(["machine", "--data-dir", str(tmp_path), "--disk-mib", "64",
                   "--memory-mib", "64"])
    out = capsys.readouterr().out
    assert status == 0
    assert "memory read:" in out and "disk read (cold):" in out
    assert "decode (one core): gzip " in out and "blosc-lz4 " in out
    assert out.count("GB/s") >= 3


def test_cli_bad_data_dir_exits_2_naming_the_problem(tmp_path, capsys) -> None:
    a_file = tmp_path / "data.bin"
    a_file.write_bytes(b"x")
    status = main(["machine", "--data-dir", str(a_file / "sub")])
    assert status == 2
    assert "cannot create the data directory" in capsys.readouterr().err


def test_cli_rejects_zero_mib(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["machine", "--disk-mib", "0"])
    assert exit_info.value.code == 2
    assert "at least 1 MiB" in capsys.readouterr().err


def test_data_dir_without_write_permission_is_a_clear_error(tmp_path, monkeypatch) -> None:
    # Root may write anywhere, so permission is denied by stubbing the check it relies on.
    monkeypatch.setattr("harness.measuring.meters.machine.os.access", lambda *_args, **_kw: False)
    with pytest.raises(DataDirError, match="is not writable.*--data-dir"):
        roofline(tmp_path, memory_bytes=MiB, disk_bytes=MiB)
