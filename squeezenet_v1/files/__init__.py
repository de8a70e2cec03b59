"""The files a user trusts us with, one job a module.

- literal_paths: a user's path handed to TensorFlow as a name, never as a glob pattern;
- temporaries: `.<what>.<pid>-<random>.tmp` beside their final place, and their cleanup;
- atomic: writes whole or not at all, fsynced;
- output_files: the rules for a path a command writes its output to;
- reading: the JSON and the digest of a file the project wrote.
"""
