"""The plugin's types (asv_bench_harness) beside asv's own peakmem_, on calls whose memory and
reads are known. Plain asv: nothing here imports the harness."""

import tinymeter

FILE_BYTES = 100_000_000
HELD_BYTES = 200_000_000


class Allocate:
    """The call allocates and writes tinymeter.allocation_bytes() (64 MiB), then frees it."""

    def peakincrement_allocate(self):
        tinymeter.allocate()

    def anonincrement_allocate(self):
        tinymeter.allocate()

    def fileincrement_allocate(self):
        tinymeter.allocate()

    def peakmem_allocate(self):
        tinymeter.allocate()


class SetupHolds:
    """setup allocates 200 MB and keeps it; the call itself adds next to nothing."""

    def setup(self):
        self.held = tinymeter.hold(HELD_BYTES)

    def anonincrement_small(self):
        tinymeter.small_work()

    def peakincrement_small(self):
        tinymeter.small_work()

    def peakmem_small(self):
        tinymeter.small_work()


class File:
    """A 100 MB file, evicted from the page cache before each call: mapped and read page by
    page, or read with read calls."""

    def setup_cache(self):
        return tinymeter.write_file("data.bin", FILE_BYTES)

    def setup(self, path):
        self.cold_files = [path]

    def peakincrement_map(self, path):
        tinymeter.map_and_read(path)

    def fileincrement_map(self, path):
        tinymeter.map_and_read(path)

    def anonincrement_map(self, path):
        tinymeter.map_and_read(path)

    def storageread_read(self, path):
        tinymeter.read_file(path)

    def readcalls_read(self, path):
        tinymeter.read_file(path)

    def coldtime_read(self, path):
        tinymeter.read_file(path)


def coldtime_names_no_file():
    """Refused: a cold-cache time needs files to make cold."""
    tinymeter.small_work()
