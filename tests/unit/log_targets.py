"""Worker targets for the step-log tests: a converter-like child that prints terminal noise."""

import os
import sys


def noisy(megabytes: int = 0):
    from edgeport.worker import report_stage

    report_stage("loading the graph")
    print("\x1b[32mINFO:\x1b[0m converting node \x1b[1mConv_0\x1b[0m")
    for i in range(0, 101, 10):  # a carriage-return progress bar, as tqdm draws it
        sys.stderr.write(f"\r{i:3d}%|{'#' * (i // 10):<10}| {i}/100")
    sys.stderr.write("\n")
    for _ in range(50):
        print("WARNING: the same line again")
    os.write(2, b"from C: backspace\x08\x08\x08\x08\x08\x08\x08\x08\x08ok\n")
    report_stage("writing the model")
    block = bytearray(megabytes * 1024 * 1024)
    block[::4096] = b"x" * len(block[::4096])  # touch every page: resident
    return len(block)


def fails_loudly():
    print("about to fail")
    from edgeport.errors import ConversionError

    raise ConversionError("the converter gave up", "see its log")


def nested():
    """A worker starting a worker without a log of its own (as a converter running a helper step does)."""
    from edgeport.worker import run_in_worker

    print("outer before")
    res = run_in_worker("tests.unit.log_targets:noisy", {}, timeout=120)
    print("outer after", res.status)
    return res.ok


def sleepy(seconds: float = 60):
    import time

    print("sleeping", flush=True)
    time.sleep(seconds)
