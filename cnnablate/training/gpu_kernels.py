"""Which TensorFlow ops have GPU kernels for which dtypes: the facts the device input path
(cnnablate/training/device.py) is built on, kept beside it as data (`gpu_kernels.json`).

With soft device placement (TensorFlow's default) an op without a GPU kernel for its dtypes
runs on the CPU, and its inputs are copied there and back, silently, every step. Nothing shows
it on a machine without a GPU, so the list is read from TensorFlow's kernel registry: the
`tensorflow` wheel (not `tensorflow-cpu`, which registers no GPU kernels) registers its GPU
kernels statically, so a CPU-only machine can list them (the method of
/work/shared/reference/gpu-kernels.md, 2026-12-04). Regenerate it after a TensorFlow upgrade,
in a scratch environment with the full wheel:

    python3 -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow==<the pinned version>
    /tmp/tf/bin/python -m cnnablate.training.gpu_kernels  # from the repository root

tests/test_device_data.py traces the device path's input steps and checks every op and dtype
in their graphs against the list (`missing`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

KERNELS_FILE = Path(__file__).with_name("gpu_kernels.json")

# Every op the device input path's traced steps use (gather, bitcast, resize, scaling, flips,
# crops, the split switch; tests/test_device_data.py fails on one missing here), plus
# the ops it must not use, so that the file says why (GatherV2 on uint8, ScaleAndTranslate),
# and the probe's conv (cnnablate/training/gpu.py).
OPS = (
    "AddV2", "All", "Assert", "Bitcast", "Cast", "ConcatV2", "Const", "Conv2D", "FloorMod",
    "GatherV2", "GreaterEqual", "Identity", "Maximum", "Minimum", "MirrorPad", "Mul", "NoOp",
    "Pack", "RealDiv", "Reshape", "ResizeBilinear", "ReverseV2", "Round", "ScaleAndTranslate",
    "Select", "SelectV2", "Shape", "Slice", "StatelessCase", "StatelessIf",
    "StatelessRandomGetKeyCounter", "StatelessRandomUniformIntV2", "StatelessRandomUniformV2",
    "StridedSlice", "Sub", "Sum",
)
# Graph plumbing that is not a kernel run on a device.
NO_KERNEL = frozenset({"Placeholder", "NoOp", "_Arg", "_Retval"})
# Strings live in host memory whatever the device (TensorFlow's DataTypeAlwaysOnHost); here
# only the message of a shape Assert in the random crop, never pixels.
HOST_ONLY_TYPES = frozenset({"DT_STRING"})


def registered(ops: Iterable[str] = OPS) -> dict:
    """The GPU kernels of `ops` from this process's TensorFlow (the full wheel): per op, one
    entry per kernel with its dtype constraints and the arguments it keeps in host memory.
    DEFAULT kernels count: TensorFlow registers them for every non-CPU device."""
    import tensorflow as tf
    from tensorflow.core.framework import types_pb2
    from tensorflow.python.framework import kernels

    out = {}
    for op in ops:
        out[op] = [
            {
                "device": k.device_type,
                "constraints": {
                    c.name: sorted(types_pb2.DataType.Name(t) for t in c.allowed_values.list.type)
                    for c in k.constraint
                },
                "host_memory": sorted(k.host_memory_arg),
            }
            for k in kernels.get_registered_kernels_for_op(op).kernel
            if k.device_type in ("GPU", "DEFAULT")
        ]
    build = tf.sysconfig.get_build_info()
    return {
        "source": (
            f"tensorflow {tf.__version__} wheel, tensorflow.python.framework.kernels."
            "get_registered_kernels_for_op (device GPU or DEFAULT); python -m "
            "cnnablate.training.gpu_kernels"
        ),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "cuda_compute_capabilities": build.get("cuda_compute_capabilities"),
        "kernels": out,
    }


def load(path: Path = KERNELS_FILE) -> dict:
    return json.loads(Path(path).read_text())


def _node_types(attrs: Mapping) -> dict[str, list[str]]:
    """A NodeDef's type attributes by name (a list attribute: every type in it)."""
    from tensorflow.core.framework import types_pb2

    types = {}
    for name, value in attrs.items():
        if value.type:
            types[name] = [types_pb2.DataType.Name(value.type)]
        elif value.list.type:
            types[name] = [types_pb2.DataType.Name(t) for t in value.list.type]
    return types


def has_gpu_kernel(op: str, types: Mapping[str, list[str]], table: Mapping) -> bool:
    """Whether a kernel of `table` runs `op` with these type attributes on a GPU: one whose
    every constraint allows the node's types, as TensorFlow's kernel lookup matches them."""
    for kernel in table.get(op, []):
        if all(set(types.get(name, [])) <= set(allowed)
               for name, allowed in kernel["constraints"].items()):
            return True
    return False


def graph_nodes(graph_def) -> list:
    """Every NodeDef of a GraphDef, those of its function library (branches of a switch)
    included."""
    return [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]


def missing(graph_def, table: Mapping | None = None) -> list[str]:
    """The ops of `graph_def` that would not run on a GPU, as "Op(attr=TYPE, ...)", sorted."""
    table = load()["kernels"] if table is None else table
    out = set()
    for node in graph_nodes(graph_def):
        if node.op in NO_KERNEL:
            continue
        types = _node_types(node.attr)
        if types and all(set(v) <= HOST_ONLY_TYPES for v in types.values()):
            continue
        if not has_gpu_kernel(node.op, types, table):
            shown = ", ".join(f"{k}={'|'.join(v)}" for k, v in sorted(types.items()))
            out.add(f"{node.op}({shown})")
    return sorted(out)


def _dumps(data: Mapping) -> str:
    """JSON with one line per kernel: readable in a diff after a TensorFlow upgrade."""
    lines = [f'  "{op}": [\n' + ",\n".join(
        "    " + json.dumps(k, sort_keys=True) for k in kernels) + "\n  ]"
        if kernels else f'  "{op}": []'
        for op, kernels in sorted(data["kernels"].items())]
    head = {k: v for k, v in data.items() if k != "kernels"}
    return (json.dumps(head, indent=1, sort_keys=True)[:-2] + ',\n "kernels": {\n'
            + ",\n".join(lines) + "\n }\n}\n")


def main() -> None:
    data = registered()
    if not any(data["kernels"].values()):
        raise SystemExit("this TensorFlow registers no GPU kernels (tensorflow-cpu?): use the "
                         "full `tensorflow` wheel")
    KERNELS_FILE.write_text(_dumps(data))
    print(f"wrote {KERNELS_FILE} ({data['source']})")


if __name__ == "__main__":
    main()
