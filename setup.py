"""lamb-tf: paper-faithful LAMB/LARS for Keras 3 and a BERT pretraining trainer.

Ranges here say what the code supports; `constraints.txt` pins the exact
versions CI and the README commands install.
"""

from setuptools import find_packages, setup

# What the trainer (`trainers/`) imports beyond what lamb_tf does; `lamb_tf`
# itself needs only Keras (tests/test_packaging.py checks both). In the
# `cpu` and `gpu` extras, and named alone by tools/install_tpu.sh, which
# installs TensorFlow's TPU build instead of the `tensorflow` distribution.
TRAINER = [
    "gin-config>=0.5",
    "absl-py>=2.0",
    "numpy>=1.26",
    "tokenizers>=0.19",
    "tensorboard>=2.16",  # the trainer's summaries (TensorFlow 2.21 no longer requires it)
    "h5py>=3.10",  # a preset's weights file is checked before any compute (Keras writes HDF5)
]
# Beside the `tensorflow` distribution (the TPU build: tools/install_tpu.sh).
HUB = ["keras-hub>=0.32,<0.33", "tensorflow-text>=2.21,<2.22"]

setup(
    name="lamb-tf",
    version="0.1.0",
    description=(
        "LAMB and LARS (You et al., 2019) as Keras 3 optimizers, and a BERT "
        "pretraining trainer for tf.distribute"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    url="https://github.com/lamb-tf/lamb-tf",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["lamb_tf", "lamb_tf.*", "trainers", "trainers.*"]),
    # The built-in corpus and its vocabulary, kept with the code so the
    # built-in data is the same everywhere (trainers/bert/data/shards/builtin.py).
    package_data={"trainers.bert.data.shards": ["pydoc_topics.json.gz", "builtin_vocab.txt"]},
    # What lamb_tf imports, nothing else: Keras within the releases the tests
    # ran on (the package relies on a few private Keras names,
    # lamb_tf/private_api.py); the Keras backend is the user's choice. No
    # TensorFlow distribution here: the extras choose one (below), and a TPU
    # VM gets `tensorflow-tpu` from tools/install_tpu.sh. A requirement on
    # `tensorflow` would install a second distribution of the same package
    # over `tensorflow-tpu`.
    install_requires=["keras>=3.15.1,<3.16"],
    entry_points={
        "console_scripts": [
            "bert-create-pretraining-data=trainers.bert.data.__main__:run",
            "bert-pretrain=trainers.bert.main:run",
            "bert-finetune=trainers.bert.finetune.main:run",
            "bert-squad-eval=trainers.bert.finetune.squad_eval:run",
            "bert-predict=trainers.bert.finetune.predict:run",
            "bert-prepare-corpus=trainers.bert.data.text.main:run",
        ],
    },
    extras_require={
        # The trainer's stack on CPUs and GPUs. keras-hub and tensorflow-text
        # (the SavedModels' tokenizers) are here because tensorflow-text
        # requires the `tensorflow` distribution (tools/install_tpu.sh
        # installs both without it).
        "cpu": ["tensorflow>=2.21,<2.22", *HUB, *TRAINER],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22", *HUB, *TRAINER],
        # The trainer's own requirements without a TensorFlow or keras-hub:
        # what tools/install_tpu.sh names beside tensorflow-tpu.
        "trainer": TRAINER,
        # The trainer's JAX engine (--engine=jax, KERAS_BACKEND=jax): its
        # checkpoints are orbax's. On GPUs add jax[cuda13], on TPUs jax[tpu].
        "jax": ["jax>=0.10", "orbax-checkpoint>=0.12"],
        "plots": ["matplotlib>=3.8"],
        # tools/prepare_corpus.py: MediaWiki markup, sentence splitting, Parquet.
        "corpus": ["sentencex>=1.0.30", "pyarrow>=18"],
        "test": [
            "pytest>=8",
            "pytest-xdist>=3.6",
            "jax>=0.10",
            "orbax-checkpoint>=0.12",
            "optax>=0.2",  # a peer in tools/benchmark_optimizer.py
            "ruff>=0.6",
            "matplotlib>=3.8",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "mwparserfromhell>=0.7",  # a peer in tools/benchmark_prepare.py
            "sentencex>=1.0.30",
            "pyarrow>=18",
            # google-research/bert's own code, the oracle for checkpoints,
            # tokenization and SQuAD (tests/google_bert.py)
            "bert-tensorflow>=1.0.4,<1.1",
            # WikiExtractor, the corpus-speed peer of tools/benchmark_prepare.py
            # (AGPL: a test dependency only, its code is never copied here)
            "wikiextractor>=3.1,<3.2",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
