"""The names of a run directory's files: the one place they are spelled."""

RUN_JSON = "run.json"
CONFIG_FILE = "config.toml"
ENGINE_LOCK = "engine.lock"  # held (flock) by the one engine training this run
ENGINE_LOCK_FD_ENV = (
    "SURGTUI_ENGINE_LOCK_FD"  # the launcher passes its locked fd to the engine under this name
)
WEIGHTS_DIR = "weights"
LAST_WEIGHTS = "last.pt"
BEST_WEIGHTS = "best.pt"
MODEL_WEIGHTS = "model.pt"  # best.pt's weights alone, for sharing (no optimizer or RNG state)
STDOUT_LOG, STDERR_LOG = "stdout.log", "stderr.log"
EVENTS_FILE = "events.jsonl"
SUMMARY_FILE = "summary.json"
TENSORBOARD_DIR = "tensorboard"  # TensorBoard event files, with [logging] tensorboard = true
# W&B's own files (wandb.init(dir=RUN_DIR)); an offline run's are in wandb/offline-run-<time>-<id>.
WANDB_DIR = "wandb"
# Why whoever signalled a stop stopped the run (a sweep's pruner); the engine puts it in run_end's reason.
STOP_REASON_FILE = "stop_reason"
TAGS_FILE = "tags.json"  # key -> value labels: a sweep's members get theirs, `surgtui tag` adds more
NOTE_FILE = "note.txt"  # the user's note on the run (`surgtui note`), free text
# In the runs directory itself, beside the runs:
TRASH_DIR = ".trash"  # runs `surgtui rm` moved away; `surgtui restore` brings them back
