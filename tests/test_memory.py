"""The memory check (recbole_bt/data/memory.py): the estimate by hand, the one line that names a setting that fits,
and a run stopped before its rows are built."""
import pytest

from conftest import TINY_YAML, tiny_config
from recbole_bt import ConfigError
from recbole_bt.data import memory
from recbole_bt.quick_start import build_config, run_recbole_bt

SMALL = dict(MAX_ITEM_LIST_LENGTH=10, train_batch_size=2, eval_batch_size=4, hidden_size=8, inner_size=8,
             n_layers=1, n_heads=1)  # fmt: skip


def config(**overrides):
    return build_config("SASRec", "tiny", [TINY_YAML], tiny_config(**dict(SMALL, **overrides)))


def test_count_lines_and_loaded_columns(tmp_path):
    path = tmp_path / "x.inter"
    path.write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t4\n1\t3\t5\t6\n2\t2\t1\t7")
    assert memory.count_lines(str(path)) == 3  # no newline at the end: still 3
    path.write_text(path.read_text() + "\n")
    assert memory.count_lines(str(path)) == 3
    columns = memory.loaded_columns(config(load_col={"inter": ["user_id", "item_id", "timestamp"]}), str(path))
    assert columns == {"user_id": "token", "item_id": "token", "timestamp": "float"}


def test_estimate_by_hand():
    # 1,000 interactions of 3 columns (1 float), 5 users, 100 items, L 10, batch 2, hidden 8, 1 layer, 1 head
    all_positions = config(train_mode="all_positions")
    assert memory.estimate(all_positions, 1000, 3, 1, users=5, items=100) == {
        "table": 3 * 8 * 1000 * 3,
        "rows": 8 * 10 * (2 * (1000 // 10 + 5) + 2 * 5),  # windows (inputs, targets) and validation / test rows
        "evaluation": 3 * 4 * 4 * 100,  # eval_batch_size x items float32 scores, 3 times
        "training": 4 * 2 * 10 * (40 * 8 + 4 * 1 * 10),
    }
    prefix = config(train_mode="prefix")
    assert memory.estimate(prefix, 1000, 3, 1, table=False)["rows"] == 2 * 1000 * 10 * (8 + 4)
    assert memory.estimate(prefix, 1000, 3, 1, table=False).keys() == {"rows"}  # users, items unknown


def test_a_run_that_does_not_fit_gets_one_line_naming_what_would():
    prefix = config(train_mode="prefix")
    terms = memory.estimate(prefix, 10**7, 3, 1, users=10**4, items=10**4)
    with pytest.raises(ConfigError) as error:
        memory.check(prefix, terms, available=terms["table"] + terms["evaluation"] + terms["rows"] // 4)
    message = str(error.value)
    assert "\n" not in message and message.startswith("this run needs about ")
    assert "set train_mode: all_positions (its rows come from the interaction table" in message
    assert "MAX_ITEM_LIST_LENGTH: " in message and message.endswith("or memory_check: False to try anyway")
    memory.check(config(train_mode="prefix", memory_check=False), terms, available=1)  # asked not to check


def test_eval_batch_size_that_fits():
    wide = config(train_mode="all_positions", eval_batch_size=10**6)
    terms = memory.estimate(wide, 1000, 3, 1, users=5000, items=10**4)
    assert terms["evaluation"] == 3 * 4 * 5000 * 10**4  # a batch holds at most one row per user
    with pytest.raises(ConfigError, match=r"set eval_batch_size: (\d+),") as error:
        memory.check(wide, terms, available=terms["table"] + terms["rows"] + terms["training"] + 12 * 10**4 * 1000,
                     items=10**4)  # fmt: skip
    assert int(error.value.args[0].split("eval_batch_size: ")[1].split(",")[0]) == 1000


def test_a_run_stops_before_its_rows_are_built(workdir, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    with pytest.raises(ConfigError, match=r"^this run needs about .* GiB before loading \(table .*\) and 0\.0 GiB"):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**SMALL))
    # loaded, before the rows: the check with the exact counts
    monkeypatch.setattr("recbole_bt.data.loading.check_before_loading", lambda *args: None)
    with pytest.raises(ConfigError, match=r"^this run needs about .* GiB \(table .*, rows .*, evaluation"):
        run_recbole_bt("SASRec", "tiny", [TINY_YAML], tiny_config(**SMALL))
    assert not (workdir / "saved").exists() or not any((workdir / "saved").iterdir())
    with pytest.raises(ConfigError, match=r"set row_builder: interactions \(no prefix rows\)"):
        memory.check(config(train_mode="all_positions", row_builder="prefix_rows"),
                     memory.estimate(config(train_mode="all_positions", row_builder="prefix_rows"), 10**7, 3, 1),
                     available=10**8)  # fmt: skip


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("row_builder", "fast", "'row_builder' must be one of ['interactions', 'prefix_rows'], got 'fast'"),
        ("memory_check", "yes", "'memory_check' must be one of [True, False], got 'yes'"),
    ],
)
def test_bad_values_name_the_key(workdir, key, value, message):
    with pytest.raises(ConfigError) as error:
        config(**{key: value})
    assert message in str(error.value)
