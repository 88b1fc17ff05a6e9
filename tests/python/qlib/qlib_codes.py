"""docs/qlib.md's symbol mapping (ticker -> Qlib code -> feature directory), written in Python.

An independent copy of the rule qlake implements in C++ (qlake::qlib::TickerToCode,
CodeToDir): tests/python/test_qlib.py uses it as the oracle, and bench/qlib_bench.py to
name the per-symbol CSVs it feeds to Qlib's dump_bin.py. Plain Python, no dependencies, so
both the main venv and .venv-qlib can import it (put this folder on sys.path).
"""

RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{i}" for i in range(10)} | {
    f"LPT{i}" for i in range(10)
}


def code_of(ticker: str) -> str:
    """The Qlib code (instruments column, upper case) of a lake ticker."""
    out = []
    for ch in ticker:
        if ch.isascii() and (ch.isupper() or ch.isdigit()):
            out.append(ch)
        elif "a" <= ch <= "z":
            out.append("_" + ch.upper())
        elif ch == ".":
            out.append("-")
        else:
            out.extend("__%02X" % b for b in ch.encode())
    code = "".join(out)
    return code + "_" if code in ("NA", "NULL") else code


def dir_of(code: str) -> str:
    """The features/ directory of a code (lower case; Qlib's prefix for device names)."""
    return ("_qlib_" + code if code.upper() in RESERVED else code).lower()
