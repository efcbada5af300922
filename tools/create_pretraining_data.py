"""Create BERT pretraining TFRecords from text; see trainers/bert/create_data_main.py.

python tools/create_pretraining_data.py --output_dir=/tmp/bert_data
"""

from trainers.bert.create_data_main import run

if __name__ == "__main__":
    run()
