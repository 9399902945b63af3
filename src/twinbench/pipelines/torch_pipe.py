"""torch `Dataset` + `DataLoader`: per-sample transforms in torch ops on CHW tensors
(the torchvision way), default collation, `num_workers` 0 or 2.

The order comes in as the sampler (the epoch plan's order); each sample's shift and flip
are looked up by its id. The loader draws its workers' base seed from its own
`torch.Generator`, not from the global one, so the model's dropout masks are the same
whichever pipeline feeds it. Memory is pinned only when a CUDA device exists (it is the
copy to the device that pinning speeds up).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from twinbench.data.text import encode
from twinbench.measure.timing import StepTimer
from twinbench.pipelines import PipelineInfo
from twinbench.pipelines.base import nchw_to_nhwc
from twinbench.pipelines.spec import EpochPlan, PipelineData


class ImageSet(Dataset):
    def __init__(self, data: PipelineData, x_nchw: torch.Tensor, plan: EpochPlan,
                 channels_last: bool) -> None:
        self.x, self.y = x_nchw, torch.from_numpy(data.y)
        self.mean = torch.from_numpy(data.mean)[:, None, None]  # (C, 1, 1)
        # numpy's sqrt: torch.sqrt of a float32 is not always correctly rounded (measured:
        # 1 ulp off for the digits' variance), and every pipeline divides by the same std.
        self.std = torch.from_numpy(data.std)[:, None, None]
        self.pad, self.augment = data.pad, data.augment
        self.offsets, self.flips = plan.offsets.tolist(), plan.flips.tolist()
        self.channels_last = channels_last  # a Keras twin takes HWC

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.x[i]  # (C, H, W)
        if self.augment:
            _, h, w = img.shape
            dy, dx = self.offsets[i]
            img = F.pad(img, (self.pad,) * 4)[:, dy:dy + h, dx:dx + w]
            if self.flips[i]:
                img = img.flip(-1)
        img = (img - self.mean) / self.std
        return (img.permute(1, 2, 0).contiguous() if self.channels_last else img), self.y[i]


class TextSet(Dataset):
    def __init__(self, data: PipelineData) -> None:
        self.data, self.y = data, torch.from_numpy(data.y)
        self.texts, self.index = [str(t) for t in data.x], data.vocab.index()

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = encode([self.texts[i]], self.data.vocab, self.data.length, self.index)[0]
        return torch.from_numpy(ids), self.y[i]  # (length,) int64


class TorchPipeline:
    def __init__(self, info: PipelineInfo, data: PipelineData, batch_size: int,
                 layout: str) -> None:
        self.data, self.batch_size, self.workers = data, batch_size, info.workers
        self.layout = layout
        self.pin = torch.cuda.is_available()
        self.texts = TextSet(data) if data.kind == "text" else None
        if data.kind == "image":  # once: NCHW, the torch layout its ops work in
            self.x = torch.from_numpy(np.array(data.x.transpose(0, 3, 1, 2), order="C"))
        self.settings = {"num_workers": self.workers, "pin_memory": self.pin,
                         "persistent_workers": False, "collate": "default",
                         "worker_start": torch.multiprocessing.get_start_method(),
                         "layout": layout}

    def loader(self, plan: EpochPlan) -> DataLoader:
        # A new Dataset per epoch carries the epoch's shifts; the workers (started per
        # epoch, persistent_workers=False) get it with the loader.
        ds = (self.texts if self.texts is not None
              else ImageSet(self.data, self.x, plan, channels_last=self.layout == "nhwc"))
        return DataLoader(ds, batch_size=self.batch_size, sampler=plan.order.tolist(),
                          num_workers=self.workers, pin_memory=self.pin,
                          generator=torch.Generator().manual_seed(0))

    def iterate(self, plan: EpochPlan) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return iter(self.loader(plan))

    def to_numpy(self, batch) -> tuple[np.ndarray, np.ndarray]:
        x, y = batch
        x = x.numpy()
        return (nchw_to_nhwc(x) if self.layout == "nchw" else x), y.numpy()

    def train(self, stack, plan: EpochPlan, timer: StepTimer) -> float:
        if hasattr(stack, "fit_epoch"):  # Keras on PyTorch takes a DataLoader in fit
            return stack.fit_epoch(self.loader(plan), len(plan.order), timer)
        return stack.train_batches(self.loader(plan), len(plan.order), timer)


def make(info: PipelineInfo, data: PipelineData, batch_size: int, threads: int | None,
         layout: str, seed: int = 0) -> TorchPipeline:
    if threads is not None:  # None: the stack's adapter has set them
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(threads)
    return TorchPipeline(info, data, batch_size, layout)
