"""Workers: proxy tasks, the batched trainer and the loop that pulls trials from the service."""
