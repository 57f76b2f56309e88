#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus: tiny valid IDX and checkpoint files, gzip ones, and a few
malformed ones; and for fuzz_geometry the op geometries at the edges of int64. The output is
committed; run this again only to change the seeds.
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


# fuzz_safetensors reads each input as a whole file and as the text of a header followed by 64
# bytes of data (see fuzz_safetensors.cpp): seeds of both kinds.
def safetensors(header, data=b"", length=None):
    text = header.encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


st_header = ('{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},'
             '"n":{"dtype":"I64","shape":[],"data_offsets":[24,32]},"h":{"dtype":"F16","shape":[2],"data_offsets":[32,36]},'
             '"b":{"dtype":"BF16","shape":[2],"data_offsets":[36,40]},"e":{"dtype":"F64","shape":[0,4],"data_offsets":[40,40]}}')
st_data = f32(1, 2, 3, 4, 5, 6) + struct.pack("<q", 3) + b"\x00\x3c\x00\xc0" + b"\x80\x3f\x00\xc0"
write("safetensors", "model", safetensors(st_header, st_data))
write("safetensors", "empty", safetensors("{}"))
write("safetensors", "bad_truncated", safetensors(st_header, st_data[:-3]))
write("safetensors", "bad_length", safetensors(st_header, st_data, length=10**6))
write("safetensors", "bad_overlap", safetensors('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                               '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', bytes(12)))
write("safetensors", "bad_duplicate", safetensors('{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},'
                                                 '"a":{"dtype":"I32","shape":[1],"data_offsets":[4,8]}}', bytes(8)))
write("safetensors", "header_64_bytes", b'{"x":{"dtype":"F32","shape":[4,2],"data_offsets":[0,32]},'
                                        b'"y":{"dtype":"I64","shape":[2,2],"data_offsets":[32,64]}}')
write("safetensors", "header_half", b'{"__metadata__":{"k":"v"},"h":{"dtype":"F16","shape":[8,4],"data_offsets":[0,64]}}')


# fuzz_geometry reads its input front to back, a byte per choice (see Bytes in fuzz_geometry.cpp);
# Geometry writes the bytes that make it choose the given values, in the harness's order.
BOUNDARY = [0, 1, 2, 3, 4, 7, 2**20, 2**31 - 1, 2**31, 2**32 + 1, 2**40 - 1, 2**40, 2**40 + 1, 2**62, 2**63 - 2, 2**63 - 1,
            -1, -2, -2**31, -2**40, -2**63 + 1, -2**63]
OPS = ["conv2d", "conv_transpose2d", "pool", "resize", "pad", "cut", "shape"]


class Geometry:
    def __init__(self, op):
        self.data = bytearray([OPS.index(op)])

    def flag(self, on):
        self.data.append(1 if on else 0)
        return self

    def pick(self, i):
        self.data.append(i)
        return self

    def value(self, v):
        if v in BOUNDARY:
            return self.pick(0).pick(BOUNDARY.index(v))
        if 0 <= v <= 8:
            return self.pick(3).pick(v)
        self.pick(2).data += (v % 2**64).to_bytes(8, "big")
        return self

    def pair(self, h, w=None):
        if w is None:
            return self.flag(True).value(h)
        return self.flag(False).value(h).value(w)

    def input(self, dims, requires_grad=True, float32=True, channels_last=False):
        self.flag(requires_grad)
        for d in dims:
            if 0 <= d <= 6:
                self.pick(1).pick(d)
            else:
                self.pick(0).value(d)
        self.flag(float32)
        if len(dims) == 4:
            self.flag(channels_last)
        return self


def geometry(name, seed):
    write("geometry", name, bytes(seed.data))


def conv2d(x, w, stride=1, padding=0, dilation=1, same=False):
    g = Geometry("conv2d").input(x).input(w, requires_grad=False).pair(stride).pair(dilation).flag(True)
    return g.pick(0 if same else 2).pair(padding).flag(True)


def pool(kind, kernel, padding, stride=None, dilation=1, x=(1, 1, 4, 4), float32=True, count_include_pad=True):
    g = Geometry("pool").flag(True).input(list(x), float32=float32).pick(kind).pair(*kernel).pair(*padding).flag(False)
    g.flag(stride is not None)
    if stride is not None:
        g.pair(*stride)
    if kind < 2:
        return g.pair(dilation)
    return g.flag(count_include_pad).flag(False)


def cut(x, dim, a, b, how, step=None):
    g = Geometry("cut").pick(len(x) - 1).input(x).flag(True).pick(dim).value(a).value(b).pick(how)
    if how == 0:
        g.flag(step is None)
        if step is not None:
            g.value(step)
    return g


T31, T40, MAX = 2**31, 2**40, 2**63 - 1
geometry("conv2d_stride_2e40", conv2d([1, 1, 4, 4], [2, 1, 3, 3], stride=T40))
geometry("conv2d_stride_max", conv2d([1, 1, 4, 4], [2, 1, 1, 1], stride=MAX))
geometry("conv2d_no_channels", conv2d([1, 0, 4, 4], [2, 0, 3, 3]))
geometry("conv2d_output_2e43", conv2d([1, 1, 1, 1], [2, 1, 1, 1], padding=2**20))
geometry("conv2d_dilation_2e62", conv2d([1, 1, 4, 4], [1, 1, 3, 3], dilation=2**62))
geometry("conv2d_same_dilation_2e62", conv2d([1, 1, 4, 4], [1, 1, 3, 3], dilation=2**62, same=True))
geometry("conv_transpose2d_stride_2e40",
         Geometry("conv_transpose2d").input([1, 1, 1, 1]).input([1, 1, 3, 3]).pair(T40).pair(0).pair(0).flag(True).pair(1))
geometry("max_pool2d_kernel_2e40", pool(0, (T40, 1), (T40 // 2, 0)))
geometry("max_pool2d_kernel_2e31_minus_1", pool(0, (1, T31 - 1), (0, 2**30 - 1), float32=False))
geometry("max_pool2d_with_indices_stride_max", pool(1, (2, 2), (0, 0), stride=(MAX, MAX)))
geometry("avg_pool2d_kernel_2e40", pool(2, (T40, T40), (T40 // 2, T40 // 2)))
geometry("avg_pool2d_kernel_2e30", pool(2, (2**30, 2**30), (2**29, 2**29)))
geometry("adaptive_avg_pool2d_2e40", Geometry("resize").flag(True).input([1, 1, 4, 4]).pair(T40, 1))
geometry("adaptive_avg_pool2d_empty_2e40", Geometry("resize").flag(True).input([0, 1, 4, 4]).pair(T40, 1))
geometry("interpolate_2e40", Geometry("resize").flag(False).input([1, 1, 4, 4]).pair(T40, 1).flag(True))
geometry("pad_empty_to_2e40", Geometry("pad").pick(1).input([0, 4]).pick(0).value(T40 - 4).value(0).pick(0))
geometry("pad_2e40", Geometry("pad").pick(1).input([2, 4]).pick(0).value(T40).value(0).pick(0))
geometry("slice_step_max", cut([1, 1, 4, 4], 2, 1, MAX, 0, step=MAX))
geometry("slice_min_to_max", cut([4, 4], 0, -2**63, MAX, 0, step=2))
geometry("narrow_length_max", cut([1, 1, 4, 4], 2, 1, MAX, 1))
geometry("split_max", cut([4, 4], 1, MAX, MAX, 2).flag(False))
geometry("chunk_max", cut([4, 4], 1, MAX, 2, 2).flag(True))
geometry("split_empty_2e40", cut([0, T40], 1, 1, 1, 2).flag(False))
geometry("zeros_2e80", Geometry("shape").pick(0).input([]).pick(2).flag(False).value(T40).flag(False).value(T40).pick(2))
geometry("view_empty_2e80", Geometry("shape").pick(1).input([0]).pick(3).flag(False).value(0).flag(False).value(T40)
         .flag(False).value(T40).pick(1))
geometry("unsqueeze_8d", Geometry("shape").pick(8).input([1] * 8).pick(1).flag(False).value(2).pick(3).value(0))
geometry("pad_crop_max", Geometry("pad").pick(1).input([1, 1]).pick(0).value(-MAX).value(MAX).pick(0))
geometry("conv2d_same_empty_input", conv2d([2**26, 5, 0, 0], [2, 5, 2, 2], same=True))
geometry("max_pool2d_no_channels_2e31_images", pool(0, (1, 1), (0, 0), x=(T31 - 1, 0, 5, 3), float32=False))
geometry("narrow_empty_at_offset", cut([0, 4], 1, 1, 2, 1))
