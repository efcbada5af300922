"""Create BERT pretraining TFRecords from text; see trainers/bert/data/__main__.py.

python tools/create_pretraining_data.py --output_dir=/tmp/bert_data
"""

from trainers.bert.data.__main__ import run

if __name__ == "__main__":
    run()
