"""SQL rewards: each instance runs in the executor it is given; the plain functions and the deprecated executor helpers."""

import sqlite3
from unittest import mock

import pytest

from trl_processsql import rewards
from trl_processsql.rewards import (
    BirdExecutionAccuracyReward,
    ExecutableStepsReward,
    ExecutionAccuracyReward,
    bind_reward_func,
    execution_accuracy_reward,
)
from trl_processsql.sql import SQLExecutor

COMPLETIONS = ["WITH a AS (SELECT x FROM t)\n\nSELECT count(*) FROM a", "SELECT 3"]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "toy.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE t (x INTEGER)")
        c.execute("INSERT INTO t VALUES (1), (2)")
    return str(path)


@pytest.fixture(scope="module")
def executor():
    with SQLExecutor(num_workers=1) as executor:
        yield executor


def test_each_reward_runs_its_sql_in_its_own_executor_and_agrees_with_the_plain_function(db, executor):
    kwargs = dict(db_path=[db, db], gold_sql=["SELECT 2", "SELECT 2"])
    with mock.patch.object(executor, "_run", wraps=executor._run) as run:
        assert ExecutionAccuracyReward(executor)(COMPLETIONS, **kwargs) == [1.0, 0.0]
        assert BirdExecutionAccuracyReward(executor)(COMPLETIONS, **kwargs) == [1.0, 0.0]
        assert ExecutableStepsReward(executor)(COMPLETIONS, db_path=kwargs["db_path"]) == [1.0, 1.0]
    assert run.call_count >= 3
    assert execution_accuracy_reward(COMPLETIONS, **kwargs) == [1.0, 0.0]


def test_instances_log_under_the_plain_functions_names(executor):
    assert [ExecutionAccuracyReward(executor).__name__, ExecutableStepsReward(executor).__name__] == [
        "execution_accuracy_reward",
        "executable_steps_reward",
    ]
    assert bind_reward_func(rewards.bird_execution_accuracy_reward, executor).__name__ == "bird_execution_accuracy_reward"
    assert bind_reward_func("org/reward-model", executor) == "org/reward-model"


def test_the_deprecated_executor_helpers_warn_and_still_drive_the_plain_functions(db, executor, monkeypatch):
    monkeypatch.setattr(rewards, "_EXECUTOR", None)
    monkeypatch.setattr(rewards, "_DEFAULTS", {})
    with pytest.warns(FutureWarning, match="ExecutionAccuracyReward\\(executor\\)"):
        rewards.set_reward_executor(executor)
    with pytest.warns(FutureWarning, match="ExecutionAccuracyReward\\(executor\\)"):
        assert rewards.get_reward_executor() is executor
    with mock.patch.object(executor, "_run", wraps=executor._run) as run:
        assert execution_accuracy_reward(COMPLETIONS, db_path=[db, db], gold_sql=["SELECT 2", "SELECT 2"]) == [1.0, 0.0]
    assert run.called
