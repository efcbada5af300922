"""Corpora to pretraining text; see trainers/bert/data/text/main.py.

python tools/prepare_corpus.py --input=enwiki-latest-pages-articles-multistream.xml.bz2 \
    --output_dir=/data/wiki_text
"""

from trainers.bert.data.text.main import run

if __name__ == "__main__":
    run()
