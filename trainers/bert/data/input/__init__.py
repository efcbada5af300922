"""The shards to batches: each phase's files checked and split among workers
(`inputs`), the validated tf.data pipeline (`pipeline`), dynamic masking
(`remask`)."""
