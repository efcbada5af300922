"""The fine-tuned model as folders people load: classifiers and the SQuAD span model."""
