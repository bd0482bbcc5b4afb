"""core.progress: a bar on a terminal, one summary line in logs, and a clean stop between batches."""

from __future__ import annotations

import io
import os
import signal

import pytest

from core.progress import INTERRUPTED_EXIT_STATUS, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_logs_get_one_summary_line_and_no_bar():
    out = io.StringIO()
    with progress("approve conversions", total=3, stdout=out) as bar:
        for _ in range(3):
            bar.advance()
        bar.details["approved"] = 3
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("approve conversions: 3/3 in ")
    assert lines[0].endswith("(approved=3)")
    assert "\x1b" not in out.getvalue()  # no terminal control codes in a log file


def test_unknown_total_counts_what_was_done():
    out = io.StringIO()
    with progress("rotate", stdout=out) as bar:
        bar.advance(5)
    assert out.getvalue().startswith("rotate: 5 in ")


def test_terminal_gets_a_bar_then_the_summary():
    out = Terminal()
    with progress("reconcile rewards", total=4, stdout=out) as bar:
        bar.advance(2)
        bar.advance(2)
    text = out.getvalue()
    assert "4/4" in text
    assert "━" in text  # the bar itself
    assert text.rstrip().splitlines()[-1].endswith("s") and "reconcile rewards: 4/4 in " in text.splitlines()[-1]


def test_keyboard_interrupt_in_a_batch_ends_with_a_resumable_summary_and_status_130():
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, progress("approve conversions", total=10, stdout=out) as bar:
        bar.advance(4)
        raise KeyboardInterrupt
    assert exit_info.value.code == INTERRUPTED_EXIT_STATUS
    line = out.getvalue().strip()
    assert line.startswith("approve conversions: 4/10 in ")
    assert "interrupted" in line
    assert "run the command again to resume" in line


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_after_the_current_batch(signum):
    out = io.StringIO()
    finished_batches = []
    with pytest.raises(SystemExit), progress("batches", total=5, stdout=out) as bar:
        for number in range(5):
            if number == 1:
                os.kill(os.getpid(), signum)  # arrives in the middle of batch 1
            finished_batches.append(number)  # the rest of the batch still runs
            bar.advance()
    assert finished_batches == [0, 1]
    assert bar.done == 2
    assert bar.interrupted
    assert "2/5" in out.getvalue() and "interrupted" in out.getvalue()


def test_a_second_ctrl_c_stops_at_once():
    out = io.StringIO()
    reached = []
    with pytest.raises(SystemExit), progress("batches", total=5, stdout=out) as bar:
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after first")
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after second")  # never runs
    assert reached == ["after first"]
    assert bar.done == 0


def test_a_stop_asked_during_the_last_batch_is_a_finished_run():
    out = io.StringIO()
    with progress("batches", total=2, stdout=out) as bar:
        bar.advance()
        os.kill(os.getpid(), signal.SIGTERM)
        bar.advance()
    assert not bar.interrupted
    assert "interrupted" not in out.getvalue()


def test_signal_handlers_are_restored():
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with progress("x", total=1, stdout=io.StringIO()) as bar:
        assert signal.getsignal(signal.SIGINT) is not before[0]
        bar.advance()
    with pytest.raises(SystemExit), progress("x", total=2, stdout=io.StringIO()):
        raise KeyboardInterrupt
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_django_output_wrapper_is_accepted():
    from django.core.management.base import OutputWrapper

    raw = io.StringIO()
    with progress("x", total=1, stdout=OutputWrapper(raw)) as bar:
        bar.advance()
    assert raw.getvalue().startswith("x: 1/1 in ")
