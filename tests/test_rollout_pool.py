"""The Monte Carlo rollout pool on a real local Ray: same Q for any number of workers, in order."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL

from seqgan_rl.errors import ConfigError
from seqgan_rl.mc import MonteCarloQ
from seqgan_rl.models.discriminator import Discriminator
from seqgan_rl.models.generator import Generator

DISC = {"vocab_size": SMALL.vocab_size, "seq_len": SMALL.seq_len, "emb_dim": 8, "filter_sizes": (1, 3),
        "num_filters": (4, 4)}


def test_workers_agree_with_each_other_and_with_the_engine(ray_local) -> None:
    from seqgan_rl.distributed import RolloutPool, module_weights

    torch.manual_seed(0)
    policy, disc = Generator(SMALL, init_std=0.5), Discriminator(**DISC)
    sequences = policy.sample(9).numpy()  # 9 rows over 2 workers: shards of 5 and 4
    results = {}
    for k in (0, 1, 2):
        pool = RolloutPool(k, SMALL, DISC, num_rollouts=6, num_cpus=0.5, seed=11)
        pool.sync(module_weights(policy, 1), module_weights(disc, 1))
        results[k] = pool.compute_q(sequences)
        pool.shutdown()
    assert results[1].shape == (9, SMALL.seq_len)
    assert np.array_equal(results[1], results[2])  # same uniforms, same worker code: identical
    # in-process (driver's thread count) vs workers: the same numbers up to float rounding
    assert np.allclose(results[0], results[2], atol=1e-5)
    engine_q = MonteCarloQ(6)(torch.from_numpy(sequences), policy, disc,
                              uniforms=MonteCarloQ(6).draw_uniforms(9, SMALL.seq_len,
                                                                    generator=torch.Generator().manual_seed(11)))
    assert np.allclose(results[0], engine_q.numpy(), atol=1e-6)


def test_sync_reaches_every_worker(ray_local) -> None:
    from seqgan_rl.distributed import RolloutPool, module_weights

    pool = RolloutPool(2, SMALL, DISC, num_rollouts=2, num_cpus=0.5)
    with pytest.raises(Exception, match="weights first"):
        pool.compute_q(np.zeros((2, SMALL.seq_len), dtype=np.int64))
    pool.sync(policy=module_weights(Generator(SMALL), 7))
    assert ray_local.get([w.ping.remote() for w in pool.workers]) == [(7, -1), (7, -1)]
    with pytest.raises(Exception, match="weights first"):  # the discriminator is still missing
        pool.compute_q(np.zeros((2, SMALL.seq_len), dtype=np.int64))
    pool.sync(discriminator=module_weights(Discriminator(**DISC), 3))
    assert ray_local.get([w.ping.remote() for w in pool.workers]) == [(7, 3), (7, 3)]
    with pytest.raises(ConfigError, match="shape"):
        pool.compute_q(np.zeros((2, SMALL.seq_len + 1), dtype=np.int64))
    pool.shutdown()
    with pytest.raises(ConfigError, match="num_workers"):
        RolloutPool(-1, SMALL, DISC)
