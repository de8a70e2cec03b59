"""Everything written into a --model_dir, and how it is read back.

- checkpoints: reading: which checkpoints are complete, the one to use, restoring it;
- checkpoint_writer: writing: crash-safe saves, rotation, the state file, a killed run's leftovers;
- claim: the lock one training run holds, and the checks before it writes anything;
- run_records: flags.json, labels.txt, runs.jsonl, and the names of evaluation's files.
"""
