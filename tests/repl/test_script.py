"""Scripts, cells, replay, -e and stdin: the non-interactive front end."""
import subprocess
import textwrap


def sh(stepwise_bin, env, *args, stdin="", cwd=None):
    return subprocess.run([stepwise_bin, *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=60, cwd=cwd)


LESSON = textwrap.dedent("""\
    -- %% 1. make a tensor
    t = sw.zeros({256, 256})
    local hidden = 1
    print("cell one", t.numel)
    -- %% 2. the local from cell 1 is gone, globals stay
    print("cell two", hidden, t.shape[1])
    -- %% 3. free it
    t:free()
    print("cell three")
    """)


def test_cells_run_like_notebook_cells(stepwise_bin, env, tmp_path):
    f = tmp_path / "lesson.lua"
    f.write_text(LESSON)
    r = sh(stepwise_bin, env, str(f))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["cell one\t65536", "cell two\tnil\t256", "cell three"]


def test_replay_echoes_source_and_cost(stepwise_bin, env, tmp_path):
    f = tmp_path / "lesson.lua"
    f.write_text(LESSON)
    r = sh(stepwise_bin, env, "--replay", str(f))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "-- %% [1/3] 1. make a tensor" in out
    assert "  t = sw.zeros({256, 256})" in out
    assert "-- %% [3/3] 3. free it" in out
    costs = [l for l in out.splitlines() if l.startswith("-- ") and "| cpu" in l]
    assert len(costs) == 3
    assert "+256.0 KiB: workspace +256.0 KiB" in costs[0]
    assert "-256.0 KiB: workspace -256.0 KiB" in costs[2]


def test_comment_cells_are_shown_not_run(stepwise_bin, env, tmp_path):
    f = tmp_path / "prose.lua"
    f.write_text("-- A lesson about tensors.\n--\n-- %% one\nprint('ran')\n-- %% a note\n-- only words here\n")
    r = sh(stepwise_bin, env, "--replay", str(f))
    assert r.returncode == 0, r.stderr
    assert "  -- A lesson about tensors." in r.stdout
    assert "-- %% [1/1] one" in r.stdout and "  -- only words here" in r.stdout
    assert sum("| cpu" in l for l in r.stdout.splitlines()) == 1


def test_pause_waits_and_q_quits(stepwise_bin, env, tmp_path):
    f = tmp_path / "lesson.lua"
    f.write_text(LESSON)
    r = sh(stepwise_bin, env, "--replay", "--pause", str(f), stdin="\n\n\n")
    assert r.returncode == 0 and "cell three" in r.stdout
    assert r.stdout.count("Enter runs it") == 3
    r = sh(stepwise_bin, env, "--replay", "--pause", str(f), stdin="\nq\n")
    assert "cell one" in r.stdout and "cell two" not in r.stdout


def test_error_names_file_and_line_and_stops(stepwise_bin, env, tmp_path):
    f = tmp_path / "bad.lua"
    f.write_text("-- %% a\nprint('first')\n-- %% b\nlocal x = nil\nx.y = 1\n-- %% c\nprint('never')\n")
    # Lua shortens long chunk names, so run from the file's folder.
    r = sh(stepwise_bin, env, "bad.lua", cwd=tmp_path)
    assert r.returncode == 1
    assert "stepwise: bad.lua:5: attempt to index a nil value" in r.stderr
    assert "first" in r.stdout and "never" not in r.stdout
    f.write_text("print('ok')\nx = = 2\n")
    r = sh(stepwise_bin, env, "bad.lua", cwd=tmp_path)
    assert r.returncode == 1 and "bad.lua:2:" in r.stderr and "ok" not in r.stdout


def test_profile_flag_and_script_args(stepwise_bin, env, tmp_path):
    f = tmp_path / "args.lua"
    f.write_text("print(arg[0], arg[1], arg[2])\nprint(#arg)\n")
    r = sh(stepwise_bin, env, str(f), "a", "b")
    assert r.stdout.splitlines() == [f"{f}\ta\tb", "2"]
    r = sh(stepwise_bin, env, "--profile", str(f), "a")
    assert "| cpu" in r.stdout and "| rss" in r.stdout


def test_e_and_stdin(stepwise_bin, env):
    r = sh(stepwise_bin, env, "-e", "x = 6", "-e", "print(x * 7)")
    assert r.returncode == 0 and r.stdout == "42\n"
    r = sh(stepwise_bin, env, "-e", "error('nope')")
    assert r.returncode == 1 and "nope" in r.stderr
    r = sh(stepwise_bin, env, stdin="print(sw.version)\n")
    assert r.returncode == 0 and r.stdout.strip() == "0.1.0"
    r = sh(stepwise_bin, env, "-", stdin="-- %% one\nprint(1)\n-- %% two\nprint(2)\n")
    assert r.stdout == "1\n2\n"


def test_bad_command_lines(stepwise_bin, env, tmp_path):
    r = sh(stepwise_bin, env, "--frobnicate")
    assert r.returncode == 2 and "unknown option '--frobnicate'" in r.stderr
    r = sh(stepwise_bin, env, str(tmp_path / "missing.lua"))
    assert r.returncode == 1 and "cannot read" in r.stderr and "missing.lua" in r.stderr
    r = sh(stepwise_bin, env, "--replay")
    assert r.returncode == 2
    r = sh(stepwise_bin, env, "--help")
    assert r.returncode == 0 and "--replay" in r.stdout
