"""This machine's limits, measured in the same run: every GB/s figure can be put against them."""

from harness.measuring.runs import profiles

PROFILE = profiles.get()


class Roofline:
    """Memory read bandwidth (large in-RAM read) and cold sequential disk read bandwidth."""

    timeout = PROFILE.timeout_seconds

    def setup(self):
        from harness import datasets, machine

        self.roofline = machine.roofline(data_dir=datasets.default_root(),
                                         **PROFILE.roofline_kwargs())

    def track_memory_read_gbps(self):
        return self.roofline.memory_read_gbps

    track_memory_read_gbps.unit = "GB/s"

    def track_disk_read_gbps(self):
        return self.roofline.disk_read_gbps

    track_disk_read_gbps.unit = "GB/s"
