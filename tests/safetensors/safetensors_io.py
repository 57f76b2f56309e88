"""The safetensors format (https://github.com/huggingface/safetensors, "Format" in its README),
written and read with json and struct only: Debian has no safetensors package for Python.

  u64 N (little-endian), N bytes of a JSON object, the data
  {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}, ...}

The writer lays tensors out as safetensors.torch.save_file does: sorted by dtype size (largest
first), then by name, the header padded with spaces to a multiple of 8 bytes. The reader checks
what the format requires: an object header, offsets that tile the data exactly, and spans that
match dtype x shape."""
import json
import struct

import torch

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32}
NAMES = {v: k for k, v in DTYPES.items()}


def to_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: its bits are an int16's
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write(path, tensors, metadata=None):
    """tensors: {name: tensor}. Returns the file's bytes."""
    order = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = dict(metadata)
    for name in order:
        raw = to_bytes(tensors[name])
        header[name] = {"dtype": NAMES[tensors[name].dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    blob = struct.pack("<Q", len(text)) + text + b"".join(chunks)
    if path is not None:
        with open(path, "wb") as f:
            f.write(blob)
    return blob


def read(blob):
    """Returns (header order of names, {name: tensor}, metadata); raises ValueError on a bad file."""
    if len(blob) < 8:
        raise ValueError("shorter than the header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError("header length beyond the file")

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("a name appears twice")
        return dict(pairs)

    header = json.loads(blob[8:8 + n].decode("utf-8"), object_pairs_hook=no_repeats)
    if not isinstance(header, dict):
        raise ValueError("the header is not an object")
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("metadata must map strings to strings")
    spans, tensors = [], {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        dtype, shape = DTYPES[info["dtype"]], info["shape"]
        numel = 1
        for d in shape:
            numel *= d
        if not 0 <= begin <= end <= len(data) or end - begin != numel * torch.empty(0, dtype=dtype).element_size():
            raise ValueError(f"{name}: offsets [{begin}, {end}] do not fit {info['dtype']} {shape}")
        spans.append((begin, end, name))
        raw = bytearray(data[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    covered = 0
    for begin, end, name in sorted(spans):
        if begin != covered:
            raise ValueError(f"{name}: the data has a hole or an overlap at byte {covered}")
        covered = end
    if covered != len(data):
        raise ValueError("bytes after the last tensor")
    return list(header), tensors, metadata
