"""Would another evaluation graph be faster? The Evaluator's graph against its variants and the
SavedModel, in one process.

    python benchmarks/eval_graph_variants.py --model_dir=DIR [--precision=fp32|bf16]
                                             [--rounds=8] [--batch_size=500]

DIR is any model_dir of run_train.py on the synthetic set (the README's quick start makes one).
Over the synthetic test split repeated to 10,000 images, rounds alternate between:

    evaluator       the graph --mode=eval runs (evaluate.evaluation_graph): variables restored
                    from the checkpoint, fed uint8 records, fetching predictions (argmax of the
                    softmax) and logits
    logits_only     the same graph fetching only the logits, the argmax taken in numpy
    frozen          the same graph with every variable folded into a constant, as export does
    savedmodel      the SavedModel exported from the same checkpoint, tf.saved_model.load

It prints each one's images/s (median and min-max over rounds) and its ratio to the SavedModel
paired by round. It checks first that each variant gives the evaluator's logits bit for bit and
the SavedModel its classes.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from squeezenet_v1 import machine  # noqa: E402
from squeezenet_v1.data import datasets  # noqa: E402
from squeezenet_v1.data import input_pipeline  # noqa: E402
from squeezenet_v1.deploy import export  # noqa: E402
from squeezenet_v1.deploy import serving  # noqa: E402
from squeezenet_v1.evaluation import evaluate  # noqa: E402
from squeezenet_v1.training import checkpoints  # noqa: E402
from squeezenet_v1.training.session_options import session_config  # noqa: E402

tf1 = tf.compat.v1
IMAGES = 10000


def restored_evaluation_graph(checkpoint_path, num_classes, precision):
    """(session, records placeholder, model): the Evaluator's graph, restored as it restores."""
    graph, model, records = evaluate.evaluation_graph(num_classes)
    with graph.as_default():
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
    sess = tf1.Session(graph=graph, config=session_config(precision))
    with graph.as_default():
        checkpoints.restore(sess, saver, checkpoint_path, variables)
    return sess, records, model


def frozen_graph(sess, records, model, precision):
    """The same graph with its variables folded into constants; (session, records, fetches)."""
    with sess.graph.as_default():
        graph_def = tf1.graph_util.convert_variables_to_constants(
            sess, sess.graph.as_graph_def(), [model.predictions.op.name, model.logits.op.name])
    graph = tf.Graph()
    with graph.as_default():
        tf1.import_graph_def(graph_def, name='')
    frozen = tf1.Session(graph=graph, config=session_config(precision))
    fetches = [graph.get_tensor_by_name(t.name) for t in (model.predictions, model.logits)]
    return frozen, graph.get_tensor_by_name(records.name), fetches


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model_dir', required=True)
    parser.add_argument('--rounds', type=int, default=8)
    parser.add_argument('--batch_size', type=int, default=500)
    parser.add_argument('--precision', choices=['fp32', 'bf16'], default='fp32',
                        help="run_train.py's --precision, for every graph (the SavedModel: "
                             "TensorFlow's oneDNN bf16 rewrite, as the benchmark runs it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        rates = measure(args, scratch)
    print('%s, %d cores, TensorFlow %s, %s; %d images, batch %d, %d rounds'
          % (machine.cpu_model(), os.cpu_count(), tf.__version__, args.precision, IMAGES,
             args.batch_size, args.rounds))
    print('  %-12s %24s %26s' % ('graph', 'images/s', 'vs savedmodel (paired)'))
    for name, values in rates.items():
        ratios = [a / b for a, b in zip(values, rates['savedmodel'])]
        print('  %-12s %8.0f [%5.0f-%5.0f] %14.3f [%.3f-%.3f]' % (
            name, statistics.median(values), min(values), max(values),
            statistics.median(ratios), min(ratios), max(ratios)))


def measure(args, scratch):
    """{variant: [images/s per round]}, the rounds alternating, after one pass of each."""
    checkpoint_path = checkpoints.choose_checkpoint(args.model_dir, None)
    source = datasets.prepare_split('synthetic', 'test', 'data', scratch)
    records, _ = input_pipeline.read_evaluation_split(source.record_files,
                                                      len(source.label_names))
    records = np.resize(records, (IMAGES, records.shape[1]))
    batches = [records[i:i + args.batch_size] for i in range(0, IMAGES, args.batch_size)]
    images = [tf.constant(np.ascontiguousarray(
        b.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))) for b in batches]

    num_classes = len(source.label_names)
    sess, placeholder, model = restored_evaluation_graph(checkpoint_path, num_classes,
                                                         args.precision)
    frozen, frozen_placeholder, frozen_fetches = frozen_graph(sess, placeholder, model,
                                                              args.precision)
    export.export(args.model_dir, os.path.join(scratch, 'export'), source.label_names,
                  checkpoint_path=checkpoint_path, saved_model_only=True)
    if args.precision == 'bf16':
        tf.config.optimizer.set_experimental_options(
            {'auto_mixed_precision_onednn_bfloat16': True})
    predict = tf.saved_model.load(os.path.join(scratch, 'export', export.SAVED_MODEL_DIR)) \
        .signatures['serving_default']
    evaluator = sess.make_callable([model.predictions, model.logits], [placeholder])
    logits_only = sess.make_callable(model.logits, [placeholder])
    frozen_call = frozen.make_callable(frozen_fetches, [frozen_placeholder])
    passes = {
        'evaluator': lambda: [evaluator(b) for b in batches],
        # The argmax that fetching predictions saved, done in numpy.
        'logits_only': lambda: [np.argmax(logits_only(b), axis=1) for b in batches],
        'frozen': lambda: [frozen_call(b) for b in batches],
        'savedmodel': lambda: [predict(**{serving.INPUT_KEY: b})[serving.CLASSES_KEY].numpy()
                               for b in images],
    }
    classes, logits = evaluator(batches[0])
    assert np.array_equal(logits_only(batches[0]), logits), 'logits_only differs'
    assert np.array_equal(frozen_call(batches[0])[1], logits), 'frozen differs'
    assert np.array_equal(predict(**{serving.INPUT_KEY: images[0]})[serving.CLASSES_KEY],
                          classes), 'the SavedModel\'s classes differ'
    rates = {name: [] for name in passes}
    for name, run in passes.items():  # warm-up, not counted
        run()
    for round_index in range(args.rounds):
        names = list(passes)
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            passes[name]()
            rates[name].append(IMAGES / (time.perf_counter() - started))
    return rates


if __name__ == '__main__':
    main()
