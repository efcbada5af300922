"""The BERT model and what a run trains on it.

bert    its configuration (a preset size or bert_config.json), keras-hub's
        BertBackbone and the pretraining heads
tasks   a run's model, loss, figures and records: pretraining, or a
        fine-tuning head (`finetune.heads`)
"""
