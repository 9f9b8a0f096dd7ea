"""The one line of an exception that goes into error messages and notes."""

from __future__ import annotations

from edgeport.exc_text import first_line


def test_the_error_part_of_a_multi_line_converter_message():
    exc = RuntimeError("<unknown>:0: warning: something\n<unknown>:0: error: loc('Erf'): 'tf.Erf' op is neither a custom op\n"
                       "   nor a flex op\n<unknown>:0: note: see current operation")
    assert first_line(exc).startswith("loc('Erf'): 'tf.Erf' op is neither a custom op nor a flex op")
    assert "\n" not in first_line(exc)


def test_cpp_prefix_length_and_empty_messages():
    assert first_line(ValueError("/onnx/checker.cc:123: check_node: bad input")) == "bad input"
    assert first_line(ValueError("x" * 1000)) == "x" * 300 and len(first_line(ValueError("y" * 1000), limit=40)) == 40
    assert first_line(KeyError()) == "KeyError" and first_line(RuntimeError("  \n ")) == "RuntimeError"
