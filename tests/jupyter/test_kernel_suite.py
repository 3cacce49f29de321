"""The jupyter_kernel_test conformance suite against `stepwise kernel`."""
import jupyter_kernel_test
import pytest


# The kernelspec fixture runs before pytest drives setUpClass, which starts
# the kernel by name from JUPYTER_PATH.
@pytest.mark.usefixtures("kernel_prefix")
class StepwiseKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "stepwise"
    language_name = "lua"
    file_extension = ".lua"
    code_hello_world = 'print("hello, world")'
    code_stderr = 'io.stderr:write("oops\\n")'
    completion_samples = [
        {"text": "sw.profil", "matches": {"sw.profile"}},
        {"text": "whil", "matches": {"while"}},
    ]
    complete_code_samples = ["x = 1", "6 * 7", "for i = 1, 2 do end", ""]
    incomplete_code_samples = ["for i = 1, 2 do", "function f()", "x = {"]
    invalid_code_samples = ["x = = 1", "end end"]
    code_generate_error = 'error("boom")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": '"a" .. "b"', "result": '"ab"'},
        {"code": "1 + 1", "result": "2"},
    ]
    code_history_pattern = "*+*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "sw.profile"
    code_clear_output = "sw.clear_output()"
    code_display_data = [
        {"code": 'sw.display({["text/html"] = "<b>hi</b>", ["text/plain"] = "hi"})', "mime": "text/html"},
        {"code": 'sw.display(sw.mem({quiet = true}))', "mime": "text/html"},
    ]

