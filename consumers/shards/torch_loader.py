"""PyTorch adapter for :class:`consumers.shards.loader.ShardLoader` (install the ``torch`` extra).

torch is imported only when a loader is built, so the rest of headrace never needs it. The adapter
keeps the numpy core's guarantees:

* dataloader worker ``w`` of ``W`` computes the steps ``start + w, start + w + W, ...`` itself, and
  PyTorch's round-robin collection hands them out in step order, so the batches are the same for any
  number of workers;
* the step counter lives in the main process and advances when a batch reaches the caller, so
  ``state_dict()`` taken after step ``k`` resumes at batch ``k + 1``, whatever the workers prefetched;
* with ``torch.distributed`` initialised, rank 0's list of sealed shards is broadcast when an epoch is
  planned or refreshed, so all ranks pack the same shard set.

A batch is a dict: ``input_ids`` and ``labels`` (views of one ``(batch, seq_len + 1)`` tensor, pinned
when ``pin_memory``), ``sample_ids`` (a list, for :meth:`ShardLoader.sample_docs`), ``epoch`` and
``step``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from consumers.shards.loader import EpochPlan, LoaderConfig, LoaderError, ShardCatalog, ShardLoader, ShardRef


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise LoaderError("the PyTorch loader needs torch: pip install 'headrace[torch]'") from exc
    return torch


def _broadcast_lister(core: ShardLoader) -> Any:
    """A shard lister that takes rank 0's listing when torch.distributed is running."""
    torch = _torch()
    dist = torch.distributed

    def lister() -> list[ShardRef]:
        core.catalog.reload()
        refs = core.catalog.snapshot()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            box: list[Any] = [[(r.id, r.data_prefix, r.tokens) for r in refs]]
            dist.broadcast_object_list(box, src=0)
            refs = [ShardRef(*t) for t in box[0]]
        return refs

    return lister


class _EpochSteps:
    """The picklable description of 'the rest of this epoch' that each worker rebuilds its view from."""

    def __init__(self, directory: Path, config: LoaderConfig, state: dict[str, Any], catalog: ShardCatalog) -> None:
        self.directory = directory
        self.config = config
        self.state = state
        self.catalog = catalog  # inherited (fork) or pickled: workers do not re-read the manifests

    def batches(self, worker_id: int, num_workers: int, in_worker: bool) -> Iterator[dict[str, Any]]:
        torch = _torch()
        view = ShardLoader(self.directory, self.config, catalog=self.catalog)
        view.load_state_dict(self.state)
        plan = view.plan
        cfg = self.config
        dtype = getattr(torch, cfg.out_dtype)
        for step in range(view.step + worker_id, plan.num_steps, num_workers):
            tokens = torch.empty((cfg.batch_size, cfg.seq_len + 1), dtype=dtype)
            if in_worker:
                tokens.share_memory_()  # filled in place, then handed to the main process without a copy
            batch = view.batch_at(step, plan, out=tokens.numpy())
            # sample_ids as a list: a tensor would cost one more shared-memory segment per batch.
            yield {"tokens": tokens, "sample_ids": batch.sample_ids.tolist(), "epoch": batch.epoch, "step": step}


def _identity(item: Any) -> Any:
    """collate_fn: batches arrive ready-made; the default would walk every element of the dict."""
    return item


def _dataset(steps: _EpochSteps) -> Any:
    torch = _torch()

    class EpochDataset(torch.utils.data.IterableDataset):  # type: ignore[name-defined]
        def __iter__(self) -> Iterator[dict[str, Any]]:
            info = torch.utils.data.get_worker_info()
            wid, n = (info.id, info.num_workers) if info is not None else (0, 1)
            return steps.batches(wid, n, in_worker=info is not None)

    return EpochDataset()


class TorchShardLoader:
    """``for batch in loader`` yields the rest of the current epoch through a PyTorch DataLoader."""

    def __init__(
        self,
        directory: Path | str,
        config: LoaderConfig,
        *,
        num_workers: int = 2,
        pin_memory: bool = True,
        prefetch_factor: int = 4,
    ) -> None:
        torch = _torch()
        self.core = ShardLoader(directory, config)
        self.core._lister = _broadcast_lister(self.core)
        self.num_workers = num_workers
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self.prefetch_factor = prefetch_factor

    @property
    def plan(self) -> EpochPlan:
        return self.core.plan

    def state_dict(self) -> dict[str, Any]:
        return self.core.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.core.load_state_dict(state)

    def refresh(self) -> int:
        """Add newly sealed shards at the current step (between two ``for`` loops, at a checkpoint)."""
        return self.core.refresh()

    def sample_docs(self, sample_id: int) -> Any:
        return self.core.sample_docs(sample_id)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        torch = _torch()
        core = self.core
        plan = core.plan
        steps = _EpochSteps(core.directory, core.config, core.state_dict(), core.catalog)
        kwargs: dict[str, Any] = {}
        if self.num_workers > 0:
            kwargs["prefetch_factor"] = self.prefetch_factor
        dl = torch.utils.data.DataLoader(
            _dataset(steps),
            batch_size=None,
            collate_fn=_identity,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            **kwargs,
        )
        for item in dl:
            if item["step"] != core.step:
                raise LoaderError(f"dataloader returned step {item['step']}, expected {core.step}")
            core.step += 1
            tokens = item.pop("tokens")
            item["input_ids"] = tokens[:, :-1]
            item["labels"] = tokens[:, 1:]
            yield item
        if core.step >= plan.num_steps:
            core._next_epoch()
