#!/usr/bin/env python3
"""Writes the hostile inputs that are too large, or too binary, to keep in git (tests/hostile.sh).

    make_inputs.py OUT_DIR MODEL_BPK

Each file is a few bytes to a few kilobytes that *claims* something huge or broken: a PNG or JPEG
header of 100000 x 100000 pixels, a WAV header of 4 GB, model files declaring 2^40 parameters or
holding NaN weights, Kaldi and Sphinx feature files with absurd sizes or NaN values, YAML nested
100000 deep. MODEL_BPK is a valid model file (the shipped digits model) to damage.
"""
import os
import struct
import sys
import zlib

out, model = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)


def write(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height, idat=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) +
            (png_chunk(b"IDAT", idat) if idat else b"") + png_chunk(b"IEND", b""))


# Images: headers that claim 10^10 pixels, or a plausible size with no pixels behind it.
write("huge.png", png(100000, 100000, zlib.compress(b"\0" * 1000)))
write("large_no_data.png", png(30000, 30000))
sof = struct.pack(">BHHB", 8, 65000, 65000, 1) + b"\x01\x11\x00"
write("huge.jpg", b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", 2 + len(sof)) + sof + b"\xff\xd9")


def wav(data_bytes_claimed, payload, riff_claimed=None, fmt_tag=1, bits=16):
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, 16000, 16000 * bits // 8, bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", data_bytes_claimed) + payload
    riff = riff_claimed if riff_claimed is not None else len(body)
    return b"RIFF" + struct.pack("<I", riff) + body


# Audio: a header claiming 4 GB of samples over one second of silence; a float WAV of NaN and Inf.
write("huge.wav", wav(0xFFFFFFF0, b"\0" * 32000, riff_claimed=0xFFFFFFF8))
write("nan.wav", wav(4 * 16000, struct.pack("<f", float("nan")) * 8000 +
                     struct.pack("<f", float("inf")) * 8000, fmt_tag=3, bits=32))
write("truncated.wav", wav(32000, b"")[:30])

# Model files. 2^40 parameters: a dense layer of 2^20 x 2^20 on a 2^20 input, no tensor stored.
arch = "input 1048576\nseed 1\ndense name=huge units=1048576 in=-1 init=he bias=1\n"
b = b"BPKITMDL" + struct.pack("<IIQ", 1, 4, len(arch)) + arch.encode() + struct.pack("<I", 0)
b += struct.pack("<Q", 0)
write("huge_params.bpk", b + struct.pack("<I", zlib.crc32(b)))
# The digits model with one weight set to NaN (its checksum recomputed, so only the value is bad).
good = open(model, "rb").read()
arch_len = struct.unpack_from("<Q", good, 16)[0]
at = 24 + arch_len + 4
name_len = struct.unpack_from("<I", good, at)[0]
rank = struct.unpack_from("<I", good, at + 4 + name_len)[0]
data_at = at + 4 + name_len + 4 + 8 * rank
bad = bytearray(good[:-4])
bad[data_at + 4:data_at + 8] = struct.pack("<f", float("nan"))
write("nan_weights.bpk", bytes(bad) + struct.pack("<I", zlib.crc32(bad)))
bad[data_at + 4:data_at + 8] = struct.pack("<f", float("inf"))
write("inf_weights.bpk", bytes(bad) + struct.pack("<I", zlib.crc32(bad)))
write("truncated.bpk", good[:len(good) // 2])
write("wrong_magic.bpk", b"PK\x03\x04" + good[4:])

# Feature files: Kaldi binary matrices claiming 2^31 - 1 rows and columns, or holding NaN;
# Sphinx cepstra whose count claims 2^31 - 1 values, or that hold Inf.
def kaldi(key, rows, cols, values):
    return (key.encode() + b" \0BFM " + b"\x04" + struct.pack("<i", rows) + b"\x04" +
            struct.pack("<i", cols) + b"".join(struct.pack("<f", v) for v in values))


write("huge.ark", kaldi("utt1", 0x7FFFFFFF, 0x7FFFFFFF, [0.0] * 13))
write("nan.ark", kaldi("utt1", 20, 13, [0.5] * 100 + [float("nan")] + [0.5] * 159))
write("huge.mfc", struct.pack("<i", 0x7FFFFFFF) + struct.pack("<f", 1.0) * 13)
write("inf.mfc", struct.pack("<i", 260) + struct.pack("<f", 1.0) * 200 +
      struct.pack("<f", float("inf")) + struct.pack("<f", 1.0) * 59)

# YAML nested 100000 deep, and one of 200000 list entries (about 2 MB).
write("deep.yaml", "name: deep\nstages: " + "[" * 100000 + "]" * 100000 + "\n")
write("enormous.yaml", "name: big\nstages:\n" + "  - image.read\n" * 200000)
# JSON nested 100000 deep as a signature enrollment.
write("deep.json", "[" * 100000 + "]" * 100000)

# A real 9900 x 9900 blank page (98 MB of pixels, 100 KB of file), just under image.read's
# max_pixels: decodable, so the programs must read it within the memory limit or refuse it clearly.
rows = zlib.compressobj(9)
blank = b"".join(rows.compress(b"\0" + b"\xff" * 9900) for _ in range(9900)) + rows.flush()
write("large_blank.png", png(9900, 9900, blank))
