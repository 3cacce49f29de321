"""The interactive REPL, driven through a pseudo-terminal like a person."""
import os
import time

import pexpect
import pytest

PROMPT = "\r\n> "


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def spawn(stepwise_bin, env):
    p = pexpect.spawn(stepwise_bin, env=env, encoding="utf-8", timeout=10, dimensions=(40, 160), cwd=ROOT)
    p.expect("Ctrl-D exits")
    p.expect("> ")
    return p


def run(p, line):
    """Send a line; return what it printed before the next prompt."""
    p.sendline(line)
    p.expect(PROMPT)
    out = p.before
    # The echo of the line itself comes first.
    return out.split("\r\n", 1)[1] if "\r\n" in out else ""


@pytest.fixture
def repl(stepwise_bin, env):
    p = spawn(stepwise_bin, env)
    yield p
    p.close(force=True)


def test_bare_expressions_print(repl):
    assert run(repl, "1 + 1").startswith("2")
    assert run(repl, "2^0.5").startswith("1.4142135623731")
    assert run(repl, "'a' .. 'b', nil, 3").startswith('"ab"\tnil\t3')
    run(repl, "sw.profile(false)")
    assert run(repl, "{a = 1, b = {1, 2, 3}, [10] = true}").strip() == "{ [10] = true, a = 1, b = { 1, 2, 3 } }"
    t = run(repl, "sw.tensor({{1, 2}, {3, 4}})")
    assert "Tensor f32[2, 2] cpu workspace" in t and "[[1, 2],\r\n [3, 4]]" in t
    # A statement prints nothing.
    assert run(repl, "x = 42").strip() == ""
    assert run(repl, "x").strip() == "42"


def test_multiline_input(repl):
    run(repl, "sw.profile(false)")
    repl.sendline("function f(a)")
    repl.expect(">> ")
    repl.sendline("  local b = a * 2")
    repl.expect(">> ")
    repl.sendline("  return b")
    repl.expect(">> ")
    repl.sendline("end")
    repl.expect(PROMPT)
    assert run(repl, "f(21)").strip() == "42"
    # A syntax error is reported at once, not treated as incomplete.
    out = run(repl, "x = = 1")
    assert "unexpected symbol" in out


def test_errors_keep_the_session(repl):
    run(repl, "sw.profile(false)")
    run(repl, "y = 7")
    assert "stdin:1: boom" in run(repl, "error('boom')")
    assert "attempt to call a nil value" in run(repl, "nope()")
    assert run(repl, "y").strip() == "7"


def test_tab_completion(repl):
    run(repl, "sw.profile(false)")
    repl.send("sw.pro\t")
    repl.expect("sw.profile")
    repl.sendline("(false)")
    repl.expect(PROMPT)
    # Several matches: a second Tab lists them.
    repl.send("sw.mem\t\t")
    repl.expect("mem_limit")
    repl.expect("mem_reset_peak")
    repl.sendcontrol("u")
    repl.sendline("")
    repl.expect("> ")
    # Object methods after ':' and properties after '.'.
    run(repl, "t = sw.zeros({2, 2})")
    repl.send("t:narr\t")
    repl.expect("t:narrow")
    repl.sendcontrol("u")
    repl.send("t.sha\t")
    repl.expect("t.shape")
    repl.sendline("")
    repl.expect(r"\{ 2, 2 \}")
    # Globals and table fields the user made.
    run(repl, "config = {learning_rate = 1, layers = 2}")
    repl.send("config.lea\t")
    repl.expect("config.learning_rate")
    repl.sendline("")
    repl.expect("1")


def test_ctrl_c_interrupts_lua_loop(repl):
    run(repl, "sw.profile(false)")
    run(repl, "state = {n = 0}")
    repl.sendline("while true do state.n = state.n + 1 end")
    time.sleep(0.5)
    repl.sendintr()
    repl.expect("interrupted")
    repl.expect("> ")
    n = int(run(repl, "state.n").strip())
    assert n > 0  # state intact and usable
    assert run(repl, "1 + 2").strip() == "3"


def test_ctrl_c_interrupts_c_loop(repl):
    run(repl, "sw.profile(false)")
    t0 = time.time()
    repl.sendline("sw.sleep(60)")
    time.sleep(0.5)
    repl.sendintr()
    repl.expect("interrupted")
    repl.expect("> ")
    assert time.time() - t0 < 5
    assert run(repl, "'still here'").strip() == '"still here"'


def test_ctrl_c_while_editing_drops_the_line(repl):
    run(repl, "sw.profile(false)")
    repl.send("for i = 1, 3 do")
    repl.sendline("")
    repl.expect(">> ")
    repl.sendintr()  # abandons the unfinished chunk
    repl.expect("> ")
    assert run(repl, "10 * 10").strip() == "100"


def test_cost_line(repl):
    out = run(repl, "big = sw.zeros({1024, 1024})")
    assert "| cpu 4.0 MiB (peak 4.0 MiB, +4.0 MiB: workspace +4.0 MiB)" in out
    out = run(repl, "big:free()")
    assert "-4.0 MiB: workspace -4.0 MiB" in out
    out = run(repl, "tmp = sw.zeros({256, 1024}):to('bf16')")
    assert "peak 1.5 MiB" in out  # the f32 temporary counted at its worst
    run(repl, "sw.profile(false)")
    assert run(repl, "1").strip() == "1"


def test_mem_prints_once(repl):
    run(repl, "sw.profile(false)")
    out = run(repl, "sw.mem()")
    assert out.count("host rss") == 1 and "kv_cache" in out
    out = run(repl, "m = sw.mem()")  # a statement: the call prints
    assert out.count("host rss") == 1


def test_history_persists_and_ctrl_d_exits(stepwise_bin, env):
    p = spawn(stepwise_bin, env)
    run(p, "marker_value = 12345")
    p.sendcontrol("d")
    p.expect(pexpect.EOF)
    p.close()
    assert p.exitstatus == 0
    with open(env["STEPWISE_HISTORY"]) as f:
        assert "marker_value = 12345" in f.read()
    p = spawn(stepwise_bin, env)
    p.send("\x1b[A")  # Up arrow recalls the last session's line
    p.expect("marker_value = 12345")
    p.sendline("")
    p.expect(PROMPT)
    p.close(force=True)


def test_ctrl_c_stops_generation_and_keeps_the_model(repl):
    run(repl, "sw.profile(false)")
    run(repl, 'm = sw.load("smollm2-135m-instruct")')
    # A reply that cannot end soon, so the Ctrl-C lands mid-generation.
    repl.sendline('text, info = m:chat("Count from 1 to 1000, one number per line.", {max_new = 2000})')
    repl.expect_exact("{max_new = 2000})\r\n")  # the echo of the line
    repl.expect(r"3\. 3")                                # then the count streams in
    repl.sendintr()
    repl.expect(PROMPT, timeout=30)
    assert run(repl, "info.stop_reason").strip() == '"interrupted"'
    assert 0 < int(run(repl, "info.new_tokens").strip()) < 2000
    assert int(run(repl, "#text").strip()) > 0
    # The model still works after the interrupt.
    out = run(repl, 'm:chat("What is the capital of France?", {max_new = 20})')
    assert "Paris" in out


def test_ctrl_c_stops_training_after_the_current_step(repl):
    run(repl, "sw.profile(false)")
    run(repl, 'm = sw.load("smollm2-135m-instruct", {quant = "nf4", max_seq = 128})')
    run(repl, 'm:lora{r = 4, targets = {"q_proj", "v_proj"}}')
    run(repl, 'ds = sw.dataset("tutorials/data/travel_train.jsonl", {model = m, max_len = 96})')
    run(repl, 'tr = sw.trainer(m, ds, {batch = 2, accum = 1, max_steps = 500})')
    repl.sendline("r = tr:run{}")
    repl.expect(r"\] \d+/500", timeout=60)  # the progress bar is moving
    repl.sendintr()
    repl.expect(r"stopped \(Ctrl-C\) after (\d+) step", timeout=60)
    done = int(repl.match.group(1))
    repl.expect(PROMPT)
    assert 0 < done < 500
    assert run(repl, "tr.global_step").strip() == str(done)
    assert run(repl, "#tr.history").strip() == str(done)
    assert run(repl, "r.interrupted").strip() == "true"
    out = run(repl, "tr:step().loss > 0")  # and training goes on from there
    assert "true" in out
