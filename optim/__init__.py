"""avatune's optimizers: AvaGrad and friends as torch optimizers, with stacked update rules.

Every rule steps parameters with a leading config dimension, so a batched trainer can
update many (lr, eps) configurations at once; the classes below use it with C = 1.
"""

from optim.adabelief import AdaBelief
from optim.adam import StackedAdam
from optim.avagrad import AvaGrad, AvaGradW
from optim.delayed_adam import DelayedAdam
from optim.fallback import PerConfigOptimizer
from optim.registry import OPTIMIZERS, OptimizerInfo, get_optimizer, optimizer_info, uses_eps
from optim.sgd import StackedSGD

__all__ = [
    "OPTIMIZERS",
    "AdaBelief",
    "AvaGrad",
    "AvaGradW",
    "DelayedAdam",
    "OptimizerInfo",
    "PerConfigOptimizer",
    "StackedAdam",
    "StackedSGD",
    "get_optimizer",
    "optimizer_info",
    "uses_eps",
]
