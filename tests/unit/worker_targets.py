"""Targets the worker tests run in child processes."""

import os
import subprocess
import sys
import time


def add(a, b):
    return a + b


def boom():
    raise ValueError("kaboom")


def user_error():
    from edgeport.errors import ModelError

    raise ModelError("bad model", "fix it")


def abort():
    os.abort()


def segfault():
    import ctypes

    ctypes.string_at(0)


def hang_with_child(pidfile):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(pidfile, "w") as fh:
        fh.write(str(child.pid))
    time.sleep(600)


def connect(host, port):
    import socket

    socket.create_connection((host, port), timeout=5)


def hard_exit():
    os._exit(7)
