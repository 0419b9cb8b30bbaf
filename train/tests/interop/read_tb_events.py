"""Reads a folder of event files with TensorBoard's own reader, the EventAccumulator (default
settings: purge_orphaned_data on), and prints every scalar series as JSON:
{"tag": [[step, value, wall_time], ...], ...}.

Run by the Rust test `tensorboard_events`: python read_tb_events.py DIR
"""
import json
import sys


def main():
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as e:
        sys.exit(
            f"{sys.executable} cannot import tensorboard ({e}): run `make venv`, which installs "
            "python/requirements.txt into the project's venv"
        )
    acc = EventAccumulator(sys.argv[1])
    acc.Reload()
    out = {
        tag: [[s.step, s.value, s.wall_time] for s in acc.Scalars(tag)]
        for tag in acc.Tags()["scalars"]
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
