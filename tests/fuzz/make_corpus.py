#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: tiny valid IDX and checkpoint files, gzip ones, and a few
malformed ones. The output is committed; run this again only to change the seeds.
    python3 tests/fuzz/make_corpus.py
"""
import gzip
import pathlib
import struct
import zlib

here = pathlib.Path(__file__).resolve().parent


def write(kind, name, data):
    path = here / "corpus" / kind / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def idx(magic, dims, payload):
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def gz(data):
    # mtime=0: the same bytes every time this script runs.
    return gzip.compress(data, mtime=0)


images = idx(0x803, [2, 3, 4], bytes(range(24)))
labels = idx(0x801, [5], bytes([0, 1, 2, 9, 7]))
write("idx", "images_2x3x4", images)
write("idx", "labels_5", labels)
write("idx", "images_2x3x4.gz", gz(images))
write("idx", "labels_5.gz", gz(labels))
write("idx", "images_1x28x28.gz", gz(idx(0x803, [1, 28, 28], bytes((i * 7) % 256 for i in range(784)))))
write("idx", "bad_truncated_data", images[:-5])
write("idx", "bad_trailing_bytes", labels + b"\x00\x00")
write("idx", "bad_zero_dim", idx(0x803, [0, 3, 4], b""))
write("idx", "bad_huge_dims", idx(0x803, [10_000_000, 4096, 4096], b""))
write("idx", "bad_magic_float", idx(0x80D, [1], b"\x00\x00\x80\x3f"))
write("idx", "bad_truncated_header", images[:9])
write("idx", "bad_truncated.gz", gz(images)[:-10])
write("idx", "bad_crc.gz", gz(labels)[:-8] + b"\xde\xad\xbe\xef" + gz(labels)[-4:])
write("idx", "bad_gzip_header_only", b"\x1f\x8b")


def entry(name, dtype, dims, payload):
    out = struct.pack("<I", len(name)) + name + struct.pack("<BB", dtype, len(dims))
    out += b"".join(struct.pack("<q", d) for d in dims)
    return out + payload


def checkpoint(entries, count=None, version=1):
    payload = b"".join(entries)
    header = b"TAPEGRAD" + struct.pack("<IIQI", version, len(entries) if count is None else count, len(payload),
                                       zlib.crc32(payload))
    return header + payload


f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
f64 = lambda *v: struct.pack(f"<{len(v)}d", *v)
weight = entry(b"fc.weight", 0, [2, 3], f32(1, 2, 3, 4, 5, 6))
bias = entry(b"fc.bias", 0, [2], f32(-1, 1))
epoch = entry(b"meta.epoch", 1, [], f64(3))
empty = entry(b"empty", 0, [0, 4], b"")
write("checkpoint", "model", checkpoint([weight, bias]))
write("checkpoint", "training", checkpoint([weight, bias, epoch, entry(b"optimizer.state.0.step", 1, [], f64(7))]))
write("checkpoint", "empty_tensor", checkpoint([empty]))
write("checkpoint", "no_entries", checkpoint([]))
write("checkpoint", "rank8", checkpoint([entry(b"r8", 1, [1, 1, 1, 2, 1, 1, 1, 1], f64(0.5, -0.5))]))
good = checkpoint([weight, bias])
write("checkpoint", "bad_truncated", good[:-3])
write("checkpoint", "bad_checksum", good[:-1] + bytes([good[-1] ^ 1]))
write("checkpoint", "bad_magic", b"TAPEGRAF" + good[8:])
write("checkpoint", "bad_version", checkpoint([weight], version=2))
write("checkpoint", "bad_count", checkpoint([weight], count=2))
write("checkpoint", "bad_dtype", checkpoint([entry(b"x", 7, [1], f32(1))]))
write("checkpoint", "bad_rank", checkpoint([entry(b"x", 0, [1] * 9, f32(1))]))
write("checkpoint", "bad_negative_dim", checkpoint([entry(b"x", 0, [-1], b"")]))
write("checkpoint", "bad_duplicate", checkpoint([bias, bias]))
write("checkpoint", "bad_name_length", checkpoint([struct.pack("<I", 100000) + b"x"]))
write("checkpoint", "bad_gzip", gz(good))
