"""Fine-tuning the pretrained encoder on the paper's measure (SQuAD), on GLUE
and on the built-in task: data (`squad`, `glue`, `topics`, `datasets`),
heads (`heads`), span decoding (`spans`), and the program (`train`, `main`)
on the pretraining trainer's engine and loop; the fine-tuned models as
folders people load (`export`) and a command that classifies text with one
(`predict`)."""
