"""The kernel through jupyter_client: interrupts, hostile messages,
stop_on_error, output from C code, shutdown and restart."""
import hashlib
import hmac
import time

import pytest
import zmq
from jupyter_client.manager import start_new_kernel
from jupyter_client.session import Session

pytestmark = pytest.mark.usefixtures("kernel_prefix")


@pytest.fixture(params=["stepwise", "stepwise-msg"])
def kernel(request):
    km, kc = start_new_kernel(kernel_name=request.param, startup_timeout=30)
    yield km, kc
    kc.stop_channels()
    km.shutdown_kernel(now=True)


@pytest.fixture
def kc(kernel):
    return kernel[1]


def run(kc, code, timeout=20, **kw):
    """Execute and collect (reply content, [(msg_type, content)] on iopub)."""
    mid = kc.execute(code, **kw)
    return collect(kc, mid, timeout)


def collect(kc, mid, timeout=20):
    out = []
    while True:
        m = kc.get_iopub_msg(timeout=timeout)
        if m["parent_header"].get("msg_id") != mid:
            continue
        if m["msg_type"] == "status":
            if m["content"]["execution_state"] == "idle":
                break
            continue
        out.append((m["msg_type"], m["content"]))
    while True:
        r = kc.get_shell_msg(timeout=timeout)
        if r["parent_header"].get("msg_id") == mid:
            return r["content"], out


def stdout_of(out):
    return "".join(c["text"] for t, c in out if t == "stream" and c["name"] == "stdout")


@pytest.mark.parametrize("code", ["while true do end", "sw.sleep(60)"])
def test_interrupt_then_next_cell_works(kernel, code):
    km, kc = kernel
    mid = kc.execute(code)
    time.sleep(1.0)
    t0 = time.time()
    km.interrupt_kernel()
    reply, out = collect(kc, mid, timeout=15)
    assert time.time() - t0 < 10
    assert reply["status"] == "error"
    assert reply["ename"] == "Interrupted"
    reply, out = run(kc, "6 * 7")
    assert reply["status"] == "ok"
    assert [c["data"]["text/plain"] for t, c in out if t == "execute_result"] == ["42"]


def test_interrupt_when_idle_is_harmless(kernel):
    km, kc = kernel
    km.interrupt_kernel()
    time.sleep(0.3)
    reply, _ = run(kc, "1")
    assert reply["status"] == "ok"


def test_output_from_c_and_lua_in_order(kc):
    reply, out = run(kc, 'print("a") os.execute("echo b") io.write("c\\n")')
    assert reply["status"] == "ok"
    assert stdout_of(out).startswith("a\nb\nc\n")


def test_cost_line_follows_each_cell(kc):
    _, out = run(kc, "x = 1")
    assert stdout_of(out).startswith("-- ")
    run(kc, "sw.profile(false)")
    _, out = run(kc, "x = 2")
    assert stdout_of(out) == ""


def test_stop_on_error_aborts_queued_cells(kc):
    first = kc.execute('sw.sleep(0.5) error("first")')
    second = kc.execute('print("never")')
    replies = {}
    while len(replies) < 2:
        r = kc.get_shell_msg(timeout=20)
        replies[r["parent_header"]["msg_id"]] = r["content"]
    assert replies[first]["status"] == "error"
    assert replies[second]["status"] == "aborted"
    reply, out = run(kc, 'print("runs")')
    assert reply["status"] == "ok" and "runs" in stdout_of(out)


def _raw_shell(km):
    sock = km.connect_shell()
    sock.setsockopt(zmq.LINGER, 0)
    return sock


def test_bad_signature_is_dropped(kernel, tmp_path):
    km, kc = kernel
    target = tmp_path / "pwned"
    sock = _raw_shell(km)
    forged = Session(key=b"not-the-key", username="mallory")
    forged.send(sock, "execute_request",
                {"code": f'io.open("{target}", "w"):close()', "silent": False,
                 "store_history": True, "user_expressions": {}, "allow_stdin": False})
    time.sleep(0.5)
    reply, _ = run(kc, "6 * 7")
    assert reply["status"] == "ok"
    assert not target.exists()
    assert sock.poll(200) == 0  # no reply was sent to the forger
    # The same message signed with the right key does run: the check above
    # failed for the signature, not for the code.
    Session(key=km.session.key, username="alice").send(
        sock, "execute_request",
        {"code": f'io.open("{target}", "w"):close()', "silent": False, "store_history": True,
         "user_expressions": {}, "allow_stdin": False})
    assert sock.poll(10000) != 0
    assert target.exists()
    sock.close()


def test_garbage_frames_are_survived(kernel):
    km, kc = kernel
    sock = _raw_shell(km)
    key = km.session.key
    sock.send_multipart([b"garbage", b"\xff\x00\x01"])
    sock.send_multipart([b"<IDS|MSG>"])
    bad_json = [b"{not json", b"{}", b"{}", b"{}"]
    sig = hmac.new(key, b"".join(bad_json), hashlib.sha256).hexdigest().encode()
    sock.send_multipart([b"<IDS|MSG>", sig] + bad_json)
    no_type = [b"{}", b"{}", b"{}", b"{}"]
    sig = hmac.new(key, b"".join(no_type), hashlib.sha256).hexdigest().encode()
    sock.send_multipart([b"<IDS|MSG>", sig] + no_type)
    time.sleep(0.3)
    reply, out = run(kc, "6 * 7")
    assert reply["status"] == "ok"
    sock.close()


def test_restart_and_shutdown(kernel):
    km, kc = kernel
    run(kc, "x = 5")
    km.restart_kernel(now=False)
    kc.wait_for_ready(timeout=30)
    reply, out = run(kc, "x == nil")
    assert [c["data"]["text/plain"] for t, c in out if t == "execute_result"] == ["true"]
    km.shutdown_kernel(now=False)
    assert not km.is_alive()


def test_display_hook_sends_display_data(kc):
    _, out = run(kc, 'sw._display_hook({["text/plain"] = "hi"}, "d1", false)'
                     ' sw._display_hook({["text/plain"] = "ho"}, "d1", true)')
    kinds = [(t, c["data"]["text/plain"], c["transient"]["display_id"])
             for t, c in out if t in ("display_data", "update_display_data")]
    assert kinds == [("display_data", "hi", "d1"), ("update_display_data", "ho", "d1")]


def test_history_and_inspect(kc):
    run(kc, "y = 1 + 2")
    mid = kc.history(hist_access_type="search", pattern="y =*", output=False, raw=True)
    r = kc.get_shell_msg(timeout=10)
    assert [h[2] for h in r["content"]["history"]] == ["y = 1 + 2"]
    mid = kc.inspect("y", 1)
    r = kc.get_shell_msg(timeout=10)
    assert r["parent_header"]["msg_id"] == mid
    assert r["content"]["found"] and "3" in r["content"]["data"]["text/plain"]


def test_inspect_function_signature(kc):
    run(kc, "function greet(name, times, ...) end")
    kc.inspect("greet", 5)
    r = kc.get_shell_msg(timeout=10)
    assert r["content"]["data"]["text/plain"].startswith("greet(name, times, ...)")
    kc.inspect("sw.profile", 10)
    r = kc.get_shell_msg(timeout=10)
    assert r["content"]["data"]["text/plain"].startswith("sw.profile(...)")


def test_stdin_round_trip(kc):
    mid = kc.execute('local a = io.read() local n = io.stdin:read("n") print(a .. "!", n + 1)',
                     allow_stdin=True)
    for answer in ("hello", "41"):
        req = kc.get_stdin_msg(timeout=10)
        assert req["msg_type"] == "input_request"
        kc.input(answer)
    reply, out = collect(kc, mid)
    assert reply["status"] == "ok"
    assert "hello!\t42" in stdout_of(out)


def test_stdin_refused_without_allow_stdin(kc):
    reply, _ = run(kc, "io.read()", allow_stdin=False)
    assert reply["status"] == "error" and "stdin is not available" in reply["evalue"]


def test_interrupt_while_waiting_for_input(kernel):
    km, kc = kernel
    mid = kc.execute("io.read()", allow_stdin=True)
    assert kc.get_stdin_msg(timeout=10)["msg_type"] == "input_request"
    km.interrupt_kernel()
    reply, _ = collect(kc, mid, timeout=15)
    assert reply["status"] == "error" and reply["ename"] == "Interrupted"
    reply, _ = run(kc, "1")
    assert reply["status"] == "ok"


def test_sw_display_when_present(kc):
    _, out = run(kc, "sw.display ~= nil")
    has = [c["data"]["text/plain"] for t, c in out if t == "execute_result"]
    if has != ["true"]:
        pytest.skip("sw.display is not in this build's prelude yet")
    _, out = run(kc, 'sw.display(42, {display_id = "a"}) sw.display(43, {display_id = "a", update = true})')
    got = [(t, c["data"]["text/plain"]) for t, c in out if t in ("display_data", "update_display_data")]
    assert got == [("display_data", "42"), ("update_display_data", "43")]
