"""The two ways a run's predictions go uniform, told apart by what the logits hold.

The notebook applies ReLU to final_conv, whose outputs are the logits. When a batch's loss is
ln(classes) and every image's logits are equal across the classes, either:
- DEAD: every final_conv output is zero. The ReLU has died: no gradient reaches any weight,
  ever, so the run never learns. Training saves and stops (unless --keep_training_when_dead).
- NO_SIGNAL: the logits are alive (not zero) but equal: the model gives every image the same
  prediction, because the images as preprocessed carry nothing it has learned to tell apart.
  Another seed cannot help; the data or its preprocessing is what to look at.
Training tells them apart at its log steps, evaluation records which it saw, and summarize flags
both by name.
"""

import math

# |loss - ln(classes)| below this: equal logits (float32 puts the mean loss within 1e-6).
TOLERANCE = 1e-4

DEAD, NO_SIGNAL = 'dead_relu', 'no_signal'
LABELS = {DEAD: 'DEAD ReLU', NO_SIGNAL: 'NO SIGNAL'}  # how summarize flags a run


def is_dead_relu_loss(loss, num_classes):
    """Whether `loss` is the loss of equal (e.g. all-zero) logits over `num_classes` classes."""
    return num_classes > 1 and abs(loss - math.log(num_classes)) < TOLERANCE


def diagnose(loss, logits, num_classes, without_dropout=False):
    """DEAD, NO_SIGNAL or None for a mean `loss` and the numpy `logits` [images, classes].

    A loss of ln(classes) is looked into only when every image's logits are equal across the
    classes (a mean near ln(classes) alone is also a run at chance). `without_dropout` (an
    evaluation's logits) also calls NO_SIGNAL live logits that are the same for every image, at
    any loss: without dropout's noise, different images giving the very same logits means the
    model sees no difference between them.
    """
    if not len(logits):
        return None
    if not logits.any():
        return DEAD if is_dead_relu_loss(loss, num_classes) else None
    spread = (logits.max(axis=1) - logits.min(axis=1)).max()
    if is_dead_relu_loss(loss, num_classes) and spread <= TOLERANCE * (1 + abs(logits).max()):
        return NO_SIGNAL
    if without_dropout and len(logits) > 1 and (logits == logits[:1]).all():
        return NO_SIGNAL
    return None


# What training does about a dead run, as its line says it.
STOPPED, STOPPED_FOR_THE_CHIEF, TRAINING_ON, LAST_STEP = 'stopped', 'chief', 'on', 'last'
_DEAD_OUTCOMES = {
    STOPPED: 'Saved a checkpoint and stopped; start a new --model_dir with another --seed '
             '(--keep_training_when_dead trains on regardless).',
    STOPPED_FOR_THE_CHIEF: 'Stopped (the chief saves the checkpoints); start a new --model_dir '
                           'with another --seed (--keep_training_when_dead trains on regardless).',
    TRAINING_ON: 'Training on, as --keep_training_when_dead asks.',
    LAST_STEP: 'It was the last step, so the run ends as asked; start a new --model_dir with '
               'another --seed.',
}


def message(kind, num_classes, outcome=STOPPED):
    """The line training logs for `kind`; for DEAD, `outcome` says what the run does."""
    uniform = 'loss is ln(%d) = %.4f' % (num_classes, math.log(num_classes))
    if kind == DEAD:
        return ('%s and every final_conv output is zero: the final ReLU has died (the notebook '
                'applies ReLU to its logits), so no gradient reaches any weight and the run '
                'cannot learn. %s' % (uniform, _DEAD_OUTCOMES[outcome]))
    return ('%s with every class\'s logit equal but not zero: the model gives every image the '
            'same prediction, so the images as preprocessed (per-image standardization removes '
            'each one\'s brightness and contrast) carry nothing it has learned to tell apart. '
            'Another --seed will not help: check that the classes differ in more than '
            'brightness, and that the labels match the images.' % uniform)
