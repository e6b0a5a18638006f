"""The default answerer: the sentences of the retrieved passages that answer the question, each cited.

`pipeline.extractive_answer` runs the stages in order (see its module doc)."""
