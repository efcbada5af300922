"""Raw corpora to pretraining text (one sentence per line, a blank line
between documents): `prepare` over the formats of `sources`, a multistream
dump cut into stream ranges by `streams`, MediaWiki markup to prose in
`wikitext`, the command line in `main`."""
