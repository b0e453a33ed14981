"""Labels of the downstream user tasks, read from the dataset's `.user` file (Liu et al. 2025's tasks, SPEC 2).

- ``gender``: 2 classes (the sorted tokens: F, M).
- ``age``: 7 classes, MovieLens-1M's brackets (`AGE_BRACKETS`: 1 = under 18, 18 = 18-24, 25 = 25-34, 35 = 35-44,
  45 = 45-49, 50 = 50-55, 56 = 56+). ML-1M's age codes are these brackets; ml-100k's raw ages are binned into them.
- ``next_item``: the item that follows each user's training history (its validation target): not a `.user`
  feature, see `recbole_bt.tasks.sequences`.
"""
import numpy as np

from recbole_bt.errors import ConfigError

AGE_BRACKETS = (1, 18, 25, 35, 45, 50, 56)
ATTRIBUTE_TASKS = {"gender": "gender", "age": "age"}  # task -> .user field
TASKS = ("gender", "age", "next_item")


def age_bracket(age):
    """Index (0..6) of the ML-1M bracket of each age [U]: the last bracket whose lower bound is <= age; ages below
    18 (and ML-1M's code 1) are bracket 0."""
    age = np.asarray(age, dtype=np.float64)
    return np.maximum(np.searchsorted(AGE_BRACKETS, age, side="right") - 1, 0)


def _user_tokens(dataset, field):
    """The raw token of `field` for every user id 1..n_users-1 of a RecBole dataset (None where missing)."""
    user_feat = dataset.user_feat
    if user_feat is None or field not in dataset.field2type:
        raise ConfigError(
            f"user task needs the user feature '{field}', but dataset '{dataset.dataset_name}' has "
            f"{'no .user file loaded' if user_feat is None else 'no such field'}: put {dataset.dataset_name}.user "
            f"(with a '{field}' column) next to its .inter file and list '{field}' in load_col's user fields"
        )
    uid = np.asarray(user_feat[dataset.uid_field], dtype=np.int64)
    ids = np.asarray(user_feat[field], dtype=np.int64)
    tokens = np.full(dataset.user_num, None, dtype=object)
    tokens[uid] = dataset.id2token(field, ids)
    return tokens


def user_labels(dataset, task):
    """Class labels of one attribute task for every user id: (labels [n_users] int, -1 where unknown; class names).

    Users whose feature is missing ('[PAD]' token) or outside the classes get -1 and take no part in the task.
    """
    if task not in ATTRIBUTE_TASKS:
        raise ConfigError(f"Make sure each of 'user_tasks' in {list(TASKS)}! (got {task!r})")
    tokens = _user_tokens(dataset, ATTRIBUTE_TASKS[task])
    labels = np.full(len(tokens), -1, dtype=np.int64)
    known = np.array([t is not None and t != "[PAD]" for t in tokens])
    if task == "age":
        try:
            ages = np.array([float(t) for t in tokens[known]])
        except ValueError as e:
            raise ConfigError(f"user task 'age' needs numeric ages in the .user file: {e}") from None
        labels[known] = age_bracket(ages)
        return labels, [str(b) for b in AGE_BRACKETS]
    classes = sorted(set(tokens[known]))
    if len(classes) < 2:
        raise ConfigError(f"user task '{task}' needs at least 2 classes, the .user file has {classes}")
    index = {c: i for i, c in enumerate(classes)}
    labels[known] = [index[t] for t in tokens[known]]
    return labels, classes
