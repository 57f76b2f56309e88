"""tapegrad's checkpoint format (nn/serialize.hpp), for the scripts that write reference files.
It needs only torch, so a script that writes plain op references runs without torchvision."""
import struct
import zlib

import torch


def write_checkpoint(path, entries):
    """tapegrad's checkpoint: header "TAPEGRAD", version u32, count u32, payload size u64, crc32 u32."""
    payload = bytearray()
    for name, t in entries:
        t = t.detach().contiguous()
        code = {torch.float32: 0, torch.float64: 1}[t.dtype]
        raw = name.encode()
        payload += struct.pack("<I", len(raw)) + raw + struct.pack("<BB", code, t.dim())
        payload += b"".join(struct.pack("<q", d) for d in t.shape)
        payload += t.numpy().tobytes()
    header = b"TAPEGRAD" + struct.pack("<IIQI", 1, len(entries), len(payload), zlib.crc32(payload) & 0xFFFFFFFF)
    with open(path, "wb") as f:
        f.write(header + payload)
    print(f"{path}: {len(entries)} entries, {len(header) + len(payload)} bytes")
