"""Downstream user tasks of a sequence encoder (Liu et al. 2025, SPEC section 2): gender and age bracket from the
`.user` file and next-item prediction, by a linear probe on frozen user embeddings or full fine-tuning, with a
fraction of the training users labelled. `run_user_tasks` runs them; `train_stage: user_tasks` of the pretraining
models (CLUE, BTPretrain, DualEncoder) calls it on the encoder of ``pre_model_path``."""
from recbole_bt.tasks.labels import AGE_BRACKETS, TASKS, age_bracket, user_labels
from recbole_bt.tasks.runner import PROTOCOLS, run_user_tasks, tasks_table
from recbole_bt.tasks.user_split import labelled_subset, split_users

__all__ = ["AGE_BRACKETS", "TASKS", "PROTOCOLS", "age_bracket", "user_labels", "run_user_tasks", "tasks_table",
           "labelled_subset", "split_users"]
