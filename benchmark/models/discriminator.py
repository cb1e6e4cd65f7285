"""The DANN domain discriminator (Ganin et al., JMLR 2016, § 4): an MLP on features → 1 logit."""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp


class DomainDiscriminator(nn.Module):
    """``features float32[B, D] -> logits float32[B]`` (positive = target domain)."""

    hidden: int = 64

    @nn.compact
    def __call__(self, features: jnp.ndarray) -> jnp.ndarray:
        x = nn.relu(nn.Dense(self.hidden)(features))
        x = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(1)(x)[:, 0]
