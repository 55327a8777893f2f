"""Task pipelines: text -> tokenizer -> features -> model -> head -> metric, for GLUE, user data and SQuAD."""
