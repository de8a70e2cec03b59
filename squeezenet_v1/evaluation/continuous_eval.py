"""`--mode=continuous_eval`: the TF1 tutorial's `cifar10_eval.py` loop, each checkpoint once.

It polls model_dir beside a trainer (readers take no lock), evaluates every complete checkpoint
that eval_history.jsonl does not hold yet, oldest first, and stops by itself once it has
evaluated the checkpoint at max_steps, or when no new checkpoint has appeared for timeout_secs.
Restarted, it skips what eval_history.jsonl already holds.
"""

import os
import time

import tensorflow as tf
from absl import logging

from squeezenet_v1.model_dir import checkpoints
from squeezenet_v1.evaluation import evaluate
from squeezenet_v1 import interrupts
from squeezenet_v1.errors import UserError

POLL_SECS = 1.0


class NoCheckpointAppearedError(UserError):
    """continuous_eval waited its whole timeout and model_dir never held a checkpoint."""


def continuous_eval(model_dir, source, batch_size, max_steps, timeout_secs,
                    poll_secs=POLL_SECS, precision='fp32', every_table=False):
    """Evaluates model_dir's checkpoints as they appear; returns the steps evaluated.

    Each evaluation is one line; the per-class table follows the last one (or every one, with
    `every_table`). Each wait for a checkpoint is said once, with what it waits for.
    """
    done = evaluate.evaluated_steps(model_dir)
    if done:
        logging.info('%s already holds results for steps %s; they are not evaluated again.',
                     evaluate.EVAL_HISTORY_FILE, _steps(done))
    evaluated, last = [], None
    with evaluate.Evaluator(model_dir, source, batch_size, precision) as evaluator:
        last_news = time.time()
        unreadable = {}
        said_waiting = False
        while not any(step >= max_steps for step in done):
            for name in _new_complete_checkpoints(model_dir, done, unreadable):
                step = checkpoints.step_in_name(name)
                results = _evaluate_if_still_there(evaluator, os.path.join(model_dir, name),
                                                   every_table or step >= max_steps)
                if results:
                    evaluated.append(step)
                    last = results
                done.add(step)
                last_news, said_waiting = time.time(), False
                if step >= max_steps:
                    break
            else:
                waited = time.time() - last_news
                if waited >= timeout_secs:
                    _report_timeout(model_dir, timeout_secs, done)
                    break
                if not said_waiting:
                    logging.info('Waiting for a checkpoint in %s%s (for up to %d s: '
                                 '--eval_timeout_secs).', model_dir,
                                 ' after step %d' % max(done) if done else '', timeout_secs)
                    said_waiting = True
                interrupts.sleep(min(poll_secs, timeout_secs - waited))
    if last and not every_table and last['global_step'] < max_steps:
        evaluate.log_per_class_table(last)  # the last one's table, which was not logged
    if done and max(done) >= max_steps:
        logging.info('The checkpoint at --max_steps=%d is evaluated; stopping.', max_steps)
    return evaluated


def _new_complete_checkpoints(model_dir, done, unreadable):
    """The complete checkpoints whose step is not in `done`, oldest first.

    Each poll lists model_dir but reads only what it has not seen: a checkpoint already
    evaluated is never read again, and one found unreadable is read again only when one of its
    files changes (`unreadable`: {name: the (file, size, mtime) it had}). Reading every
    checkpoint each second took 40% of a core beside 200 of them, from the trainer beside it.
    """
    grouped = checkpoints.checkpoint_files(model_dir)
    for name in sorted(grouped, key=checkpoints.step_in_name):
        if checkpoints.step_in_name(name) in done:
            continue
        stamp = _stamp(model_dir, grouped[name])
        if unreadable.get(name) == stamp:
            continue
        if checkpoints.what_is_wrong(model_dir, name, grouped[name]):
            unreadable[name] = stamp
            continue
        unreadable.pop(name, None)
        yield name


def _stamp(model_dir, file_names):
    stamp = []
    for file_name in sorted(file_names):
        try:
            info = os.stat(os.path.join(model_dir, file_name))
        except OSError:
            continue
        stamp.append((file_name, info.st_size, info.st_mtime_ns))
    return tuple(stamp)


def _evaluate_if_still_there(evaluator, checkpoint_path, per_class_table):
    """The checkpoint's results, or None when a rotating trainer removed it first."""
    try:
        return evaluator.evaluate(checkpoint_path, per_class_table)
    except (checkpoints.NoCheckpointError, tf.errors.NotFoundError, tf.errors.DataLossError,
            FileNotFoundError):
        logging.warning('%s was removed before it could be evaluated (the trainer keeps '
                        '--keep_checkpoint_max); it is skipped.', checkpoint_path)
        return None


def _report_timeout(model_dir, timeout_secs, done):
    if not done:
        raise NoCheckpointAppearedError(
            'no checkpoint appeared in %s within --eval_timeout_secs=%d. Is the trainer writing '
            'to this --model_dir? Give the same --model_dir, or a longer --eval_timeout_secs.'
            % (model_dir, timeout_secs))
    logging.info('No new checkpoint in %s for %d s (--eval_timeout_secs); stopping after step '
                 '%d.', model_dir, timeout_secs, max(done))


def _steps(steps):
    steps = sorted(steps)
    return ', '.join(str(s) for s in steps) if len(steps) <= 6 else '%d ... %d (%d steps)' % (
        steps[0], steps[-1], len(steps))
