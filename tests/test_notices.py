"""``run_notices``: Ray's and RLlib's known-benign notices go to ``<run_dir>/notices.log``, real problems still show.

The notices are raised by the real code paths where that is cheap (token auth, the
new-API-stack notice, RLlib's RLModuleConfig deprecation) and reach the terminal
through the real handler that ``import ray`` installs, which writes to
``sys.stderr`` at emit time (so ``capsys`` sees what a terminal would).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from conftest import SmokeRun

from seqgan_rl.errors import ConfigError
from seqgan_rl.experiment.notices import KNOWN_NOTICES, NOTICES_FILE, run_notices
from seqgan_rl.models.generator import GeneratorConfig

TOKEN_AUTH = "Token authentication is enabled for this Ray cluster"
NEW_API_STACK = "on the new API stack! This is the new default behavior"
RLMODULE_CONFIG = "`RLModule(config=[RLModuleConfig object])` has been deprecated"
RLMODULE_CONFIG_KEY = "RLModule(config=[RLModuleConfig object])"  # its log_once key
LOCAL_RAY = "Started a local Ray instance."
GPUTIL = "Install gputil for GPU system monitoring."


class CurrentStderr:
    """A stream that writes to whatever ``sys.stderr`` is when it writes (pytest swaps it per test phase)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


@pytest.fixture(autouse=True)
def _ray_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's and RLlib's terminal handlers (on "ray" and "ray.rllib"), as in a run, writing to the test's stderr.

    Both bind ``sys.stderr`` when ``ray`` / ``ray.rllib`` is first imported: in a run, the terminal."""
    import ray.rllib  # noqa: F401
    from ray._private.log import PlainRayHandler

    ray_logger = logging.getLogger("ray")
    if not any(type(handler) is PlainRayHandler for handler in ray_logger.handlers):
        # a ray.init(configure_logging=False) + ray.shutdown() earlier in this process took it away
        handler = PlainRayHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s\t%(levelname)s %(filename)s:%(lineno)s -- %(message)s"))
        monkeypatch.setattr(ray_logger, "handlers", [*ray_logger.handlers, handler])
    for name in ("ray", "ray.rllib"):
        for handler in logging.getLogger(name).handlers:
            if type(handler) in (PlainRayHandler, logging.StreamHandler):
                monkeypatch.setattr(handler, "stream", CurrentStderr())


def token_auth_notice() -> None:
    from ray._private.authentication.authentication_token_setup import _warn_token_auth_enabled

    _warn_token_auth_enabled()  # what ray.init() calls for a new local Ray


def new_api_stack_notice() -> None:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.util.debug import reset_log_once

    reset_log_once("PPO_on_new_api_stack")
    PPOConfig().environment("CartPole-v1").validate()


def build_generator_module(value_head: bool = False):
    """Our module, built the way RLlib builds it (RLModuleSpec.build, keyword arguments)."""
    from ray.util.debug import reset_log_once

    from seqgan_rl.rllib.generator_module import generator_module_spec

    config = GeneratorConfig(vocab_size=20, seq_len=4, emb_dim=4, hidden_dim=4)
    spec = generator_module_spec(config, value_head=value_head)
    spec.observation_space = gymnasium.spaces.Dict({
        "prefix": gymnasium.spaces.Box(0, config.vocab_size - 1, (config.seq_len,), np.int64),
        "length": gymnasium.spaces.Discrete(config.seq_len + 1),
    })
    spec.action_space = gymnasium.spaces.Discrete(config.vocab_size)
    reset_log_once(RLMODULE_CONFIG_KEY)  # RLlib says it once per process
    return spec.build()


def other_notices() -> None:
    logging.getLogger("ray._private.worker").info(LOCAL_RAY)
    logging.getLogger("ray.tune.utils.util").warning(GPUTIL)


def all_notices() -> None:
    token_auth_notice()
    new_api_stack_notice()
    build_generator_module()
    other_notices()


EVERY_NOTICE = (TOKEN_AUTH, NEW_API_STACK, RLMODULE_CONFIG, LOCAL_RAY, GPUTIL)


def test_known_notices_go_to_the_log_not_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with run_notices(run_dir) as path:
        all_notices()
    assert path == run_dir / NOTICES_FILE
    err = capsys.readouterr().err
    log = path.read_text()
    for notice in EVERY_NOTICE:
        assert notice not in err
        assert notice in log
    assert "WARNING ray._common.deprecation (rl_module.py:" in log  # RLlib's own line, not ours


def test_verbose_shows_them_on_the_terminal_too(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with run_notices(tmp_path, verbose=True) as path:
        all_notices()
    err = capsys.readouterr().err
    log = path.read_text()
    for notice in EVERY_NOTICE:
        assert notice in err and notice in log


def test_without_the_block_they_reach_the_terminal(capsys: pytest.CaptureFixture) -> None:
    all_notices()  # what the user saw before; also proves the filters are gone after the other tests
    err = capsys.readouterr().err
    for notice in EVERY_NOTICE:
        assert notice in err


def test_unknown_records_and_errors_still_reach_the_terminal(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ray.rllib.core.rl_module.rl_module import RLModuleConfig
    from ray.util.debug import reset_log_once

    with run_notices(tmp_path) as path:
        logging.getLogger("ray.rllib.algorithms.algorithm_config").warning("an unknown RLlib warning")
        logging.getLogger("ray.rllib.algorithms.algorithm_config").error(
            "You are running SeqGAN on the new API stack! This is the new default behavior for this algorithm.")
        logging.getLogger("ray.rllib.somewhere_else").warning(f"You are running SeqGAN {NEW_API_STACK}")
        logging.getLogger("ray._common.deprecation").warning("DeprecationWarning: `something else` has been "
                                                            "deprecated.")
        reset_log_once(RLMODULE_CONFIG_KEY)
        RLModuleConfig()  # the same deprecation caused by code other than RLlib's RLModule.__init__
    err = capsys.readouterr().err
    assert "an unknown RLlib warning" in err
    assert any("ERROR" in line and NEW_API_STACK in line for line in err.splitlines())  # errors always show
    assert err.count(NEW_API_STACK) == 2  # and a known message from another logger is not known
    assert "`something else` has been deprecated" in err
    assert RLMODULE_CONFIG in err and "test_notices.py" in err
    assert not path.exists()  # none of them was a known notice


def test_building_our_module_logs_only_rllibs_own_notice(tmp_path: Path) -> None:
    """The RLModuleConfig deprecation comes from RLlib's RLModule.__init__ (rl_module.py:463), not from us."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep()
    ray_logger = logging.getLogger("ray")
    ray_logger.addHandler(keep)
    try:
        plain, with_value_head = build_generator_module(False), build_generator_module(True)
    finally:
        ray_logger.removeHandler(keep)
    assert not hasattr(plain, "value_head") and hasattr(with_value_head, "value_head")  # setup did its part
    assert len(records) == 2, "RLlib 2.60 logs the deprecation for the first RLModule of a process"
    for record in records:
        assert record.name == "ray._common.deprecation" and RLMODULE_CONFIG in record.getMessage()
        assert Path(record.pathname).as_posix().endswith("ray/rllib/core/rl_module/rl_module.py")
        assert (record.funcName, record.lineno) == ("__init__", 463)


def test_a_module_error_is_not_hidden_by_rllibs_deprecated_fallback() -> None:
    """An AttributeError in setup would make RLModuleSpec.build retry ``module_class(RLModuleConfig)``."""
    from seqgan_rl.rllib.generator_module import generator_module_spec

    spec = generator_module_spec(GeneratorConfig(vocab_size=20, seq_len=4, emb_dim=4, hidden_dim=4))
    spec.observation_space = gymnasium.spaces.Box(0, 1, (4,))
    spec.action_space = gymnasium.spaces.Box(0, 1, (3,))
    with pytest.raises(ValueError, match="needs a Discrete action space"):
        spec.build()


def test_notices_wait_for_the_run_directory_and_never_create_it(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    with run_notices(run_dir):
        token_auth_notice()
    assert not run_dir.exists()

    with pytest.raises(ConfigError), run_notices(run_dir):
        token_auth_notice()
        raise ConfigError("refused before the run directory exists")
    assert not run_dir.exists()
    assert TOKEN_AUTH not in capsys.readouterr().err

    with run_notices(run_dir) as path:
        token_auth_notice()  # buffered
        assert not run_dir.exists()
        run_dir.mkdir()  # what run_training does once the input is valid
        other_notices()
    lines = path.read_text().splitlines()
    assert [TOKEN_AUTH in lines[0], LOCAL_RAY in lines[1], GPUTIL in lines[2]] == [True, True, True]

    with run_notices(run_dir):  # a resumed run appends
        token_auth_notice()
    assert path.read_text().count(TOKEN_AUTH) == 2


def test_an_existing_run_directory_gets_no_log_without_notices(tmp_path: Path) -> None:
    with run_notices(tmp_path) as path:
        logging.getLogger("ray").warning("not a known notice")
    assert not path.exists()


def logging_state() -> dict[str, tuple]:
    loggers = [logging.root, *(logger for logger in logging.root.manager.loggerDict.values()
                               if isinstance(logger, logging.Logger))]
    return {logger.name: (logger.level, logger.propagate, logger.disabled, tuple(logger.filters),
                          tuple((handler, handler.level, tuple(handler.filters)) for handler in logger.handlers))
            for logger in loggers}


@pytest.mark.parametrize("verbose", [False, True])
def test_levels_handlers_and_warning_filters_are_restored(tmp_path: Path, verbose: bool) -> None:
    for notice in KNOWN_NOTICES:
        logging.getLogger(notice.logger)
    before = logging_state()
    filters, showwarning = list(warnings.filters), warnings.showwarning
    with pytest.raises(RuntimeError), run_notices(tmp_path, verbose=verbose):
        token_auth_notice()
        with pytest.warns(UserWarning, match="inside the block"):
            warnings.warn("inside the block", UserWarning, stacklevel=1)
        raise RuntimeError("the run failed")
    after = logging_state()
    assert {name: after[name] for name in before} == before
    assert warnings.filters == filters and warnings.showwarning is showwarning
    for notice in KNOWN_NOTICES:
        assert logging.getLogger(notice.logger).filters == []


def test_in_a_real_process_warnings_and_errors_reach_stderr(tmp_path: Path) -> None:
    """Outside pytest's capture: Python warnings and Ray errors still show, known notices go to the log."""
    script = textwrap.dedent("""
        import logging, sys, warnings
        from pathlib import Path
        import ray
        from ray._private.authentication.authentication_token_setup import _warn_token_auth_enabled
        from seqgan_rl.experiment.notices import run_notices

        run = Path(sys.argv[1])
        with run_notices(run):
            run.mkdir()
            _warn_token_auth_enabled()
            warnings.warn("an unknown Python warning", UserWarning)
            logging.getLogger("ray._private.worker").error("a real Ray error")
    """)
    result = subprocess.run([sys.executable, "-c", script, "run"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "UserWarning: an unknown Python warning" in result.stderr
    assert any("ERROR" in line and "a real Ray error" in line for line in result.stderr.splitlines())
    assert TOKEN_AUTH not in result.stderr
    assert TOKEN_AUTH in (tmp_path / "run" / NOTICES_FILE).read_text()


@pytest.mark.slow
def test_smoke_train_terminal_shows_no_known_notice(smoke_run: SmokeRun) -> None:
    result = smoke_run.result  # run as from a user's shell: without RAY_AUTH_MODE, which silences (a)
    log = (smoke_run.run_dir / NOTICES_FILE).read_text()
    for notice in (TOKEN_AUTH, NEW_API_STACK, RLMODULE_CONFIG):
        assert notice not in result.stderr, result.stderr[-3000:]
        assert notice in log
    for notice in (LOCAL_RAY, GPUTIL):
        assert notice not in result.stderr
