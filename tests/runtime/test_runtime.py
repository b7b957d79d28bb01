"""easyssl.runtime: random streams of their own, time budgets, autocast, the logger."""

import logging
import random

import numpy as np
import pytest
import torch

from easyssl.runtime.budget import TimeBudget
from easyssl.runtime.device import autocast, resolve_device
from easyssl.runtime.log import LOGGER_NAME, console_handler, logger
from easyssl.runtime.rng import RandomStreams, get_rng_state


def _draw():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_random_streams_leave_the_global_state_alone_and_continue_where_they_stopped():
    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    expected_global = _draw()
    random.seed(123), np.random.seed(123), torch.manual_seed(123)
    streams = RandomStreams(5)
    with streams.active():
        first = _draw()
    with streams.active():
        second = _draw()
    assert _draw() == expected_global  # the caller's generators did not move
    random.seed(5), np.random.seed(5), torch.manual_seed(5)
    assert [first, second] == [_draw(), _draw()]  # the streams are the seed's, as if seeded globally


def test_random_streams_state_round_trips_also_while_active():
    streams = RandomStreams(1)
    with streams.active():
        _draw()
        saved = streams.state_dict()  # the live state, not the one at entry
        after = _draw()
    other = RandomStreams(99)
    other.load_state_dict(saved)
    with other.active():
        assert _draw() == after
    with other.active():
        with other.active():  # nesting is a no-op
            pass
    assert torch.equal(get_rng_state()["torch"], torch.get_rng_state())


def test_time_budget_sets_aside_and_reports_exhaustion():
    assert not TimeBudget(None) and not TimeBudget(None).exhausted(1e9) and TimeBudget(None).stop_at == float("inf")
    budget = TimeBudget("00:00:01:00")
    assert budget and budget.seconds == 60 and not budget.exhausted(59.9) and budget.exhausted(60)
    budget.set_aside(15)
    assert budget.stop_at == 45 and budget.exhausted(45)
    budget.set_aside(-3)  # never adds time
    assert budget.stop_at == 60
    with pytest.raises(ValueError, match="positive"):
        TimeBudget(0)


def test_autocast_follows_the_resolved_precision():
    cpu = resolve_device("cpu")
    with autocast(cpu, "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(cpu, "32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_status_lines_go_to_the_easyssl_logger_and_the_console_handler_shows_them(capsys):
    assert logger is logging.getLogger(LOGGER_NAME) and LOGGER_NAME == "easyssl"
    handler = console_handler(logging.INFO)
    try:
        assert console_handler() is handler  # attached once
        logger.info("easyssl: hello")
        assert capsys.readouterr().err == "easyssl: hello\n"
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
