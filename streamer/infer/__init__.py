"""infer: one inference thread running the model over batched windows."""
