#!/usr/bin/env python3
"""Runs a program and compares what it prints with a reference file, as text with the numbers
compared within float tolerance: the text between numbers must match (whitespace aside, since a
column's width follows its numbers), and each number must agree with the reference's to
|a - b| <= atol + rtol * |b|. Needs no torch.

  compare_output.py REFERENCE [--atol A] [--rtol R] -- PROGRAM [ARGS...]

Exits 0 on a match; otherwise prints the first difference and exits 1.
"""
import argparse
import re
import subprocess
import sys

# A number standing on its own: not the digit that ends a name such as "AddBackward0".
NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?(?![\w.])")


def split(text):
    """The text between numbers (whitespace removed) and the numbers, in order."""
    pieces, numbers, start = [], [], 0
    for match in NUMBER.finditer(text):
        pieces.append("".join(text[start:match.start()].split()))
        numbers.append(float(match.group()))
        start = match.end()
    pieces.append("".join(text[start:].split()))
    return pieces, numbers


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("reference")
    parser.add_argument("--atol", type=float, default=2e-4)
    parser.add_argument("--rtol", type=float, default=1e-3)
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("give the program to run after --")

    run = subprocess.run(program, stdout=subprocess.PIPE, text=True)
    if run.returncode != 0:
        print(f"{program[0]} exited with status {run.returncode}")
        return 1
    with open(args.reference) as f:
        expected_text = f.read()
    got_pieces, got_numbers = split(run.stdout)
    want_pieces, want_numbers = split(expected_text)
    if len(got_numbers) != len(want_numbers):
        print(f"printed {len(got_numbers)} numbers, the reference has {len(want_numbers)}")
        print("--- printed\n" + run.stdout + "--- reference\n" + expected_text)
        return 1
    for i, (got, want) in enumerate(zip(got_pieces, want_pieces)):
        if got != want:
            print(f"text before number {i} differs: printed {got!r}, reference {want!r}")
            return 1
    for i, (got, want) in enumerate(zip(got_numbers, want_numbers)):
        if abs(got - want) > args.atol + args.rtol * abs(want):
            print(f"number {i} differs: printed {got}, reference {want}")
            return 1
    print(f"{len(got_numbers)} numbers and the text between them match {args.reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
