"""Running a session with its inputs bound on the device (IOBinding): one upload per input per frame, the score
read back as a scalar.

With ``session.run`` onnxruntime copies every numpy input to the GPU and the output back on each call,
through pageable host memory. :class:`BoundRunner` uploads each input once into an ``OrtValue`` on the
device, binds the output to host memory (a scalar: 4 bytes back) and runs with the binding. On the CPU
(device ``cpu``) the same code runs without copies, which is how it is tested without a GPU.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

DEVICE_OF = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda", "CPUExecutionProvider": "cpu"}


class PlainRunner:
    """``session.run``: the first output's first element as a float."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> float:
        return float(np.asarray(self.session.run(None, dict(feeds))[0]).reshape(-1)[0])


class BoundRunner:
    """IOBinding: inputs uploaded once to ``device`` (``cuda`` or ``cpu``), the first output bound to host memory."""

    def __init__(self, session: Any, device: str | None = None, device_id: int = 0) -> None:
        self.session = session
        self.device = device or DEVICE_OF.get(session.get_providers()[0], "cpu")
        self.device_id = device_id
        self.output = session.get_outputs()[0].name
        self.uploads = 0  # inputs uploaded so far (tests and the bench read it)

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> float:
        import onnxruntime as ort

        binding = self.session.io_binding()
        for name, arr in feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(arr), self.device, self.device_id)
            binding.bind_ortvalue_input(name, value)
            self.uploads += 1
        binding.bind_output(self.output, "cpu")
        self.session.run_with_iobinding(binding)
        out = binding.copy_outputs_to_cpu()[0]
        return float(np.asarray(out).reshape(-1)[0])


def runner_for(session: Any, provider: str) -> PlainRunner | BoundRunner:
    """IOBinding on a GPU provider (cuda, tensorrt); plain ``run`` on the CPU."""
    return BoundRunner(session, "cuda") if provider in ("cuda", "tensorrt") else PlainRunner(session)
