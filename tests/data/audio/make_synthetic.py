#!/usr/bin/env python3
"""Writes synthetic.wav: 10010 samples (410 + 60 * 160) of 16-bit mono audio at 16 kHz.

0-4000: a linear chirp 100 -> 7900 Hz (amplitude 0.5, starting at its peak) plus noise;
4000-6000: digital silence (zeros: the log floors); 6000-10010: loud noise plus a 440 Hz tone,
ending on a loud sample. Its length ends exactly at a Sphinx frame boundary. The noise comes from
a fixed linear congruential generator, so the file is the same on every machine and Python.
"""
import math
import struct
import sys
import wave

RATE, N = 16000, 10010
state = 12345


def noise():  # uniform in [-1, 1)
    global state
    state = (1103515245 * state + 12345) % 2**31
    return state / 2**30 - 1.0


samples = []
for i in range(N):
    t = i / RATE
    if i < 4000:
        f0, f1, dur = 100.0, 7900.0, 4000 / RATE
        x = 0.5 * math.cos(2 * math.pi * (f0 * t + 0.5 * (f1 - f0) / dur * t * t)) + 0.02 * noise()
    elif i < 6000:
        x = 0.0
    else:
        x = 0.4 * noise() + 0.3 * math.sin(2 * math.pi * 440 * t)
    samples.append(x)
samples[-1] = 0.8
with wave.open(sys.argv[1] if len(sys.argv) > 1 else "synthetic.wav", "wb") as w:
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(RATE)
    w.writeframes(b"".join(struct.pack("<h", max(-32768, min(32767, round(x * 32767)))) for x in samples))
