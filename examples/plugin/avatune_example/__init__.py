"""An example avatune plugin: a task in two versions and an optimizer, found by entry point.

- `example-spirals` (`avatune_example.spirals:Spirals`): one configuration at a time.
- `example-spirals-batched` (`avatune_example.batched:BatchedSpirals`): C stacked.
- `example-adamax` (`avatune_example.adamax:Adamax`): a `torch.optim.Optimizer`.
"""
